"""The LiTS-117 slice split: disjoint blocks, a contiguous test block, 10 % labeled, deterministic."""

import pytest

from segment_data import lits117_split


def test_blocks_are_disjoint_and_cover_every_slice():
    s = lits117_split()
    train, gap, test = set(s.train), set(s.gap), set(s.test)
    assert not (train & gap) and not (train & test) and not (gap & test)
    assert train | gap | test == set(range(128))


def test_test_block_is_the_contiguous_superior_quarter_behind_a_gap():
    s = lits117_split()
    assert s.test == tuple(range(96, 128))          # 25 % of 128 at the superior end (k -> S)
    assert s.gap == tuple(range(88, 96))
    assert s.train == tuple(range(88))
    assert min(s.test) - max(s.train) == 9          # 8 slices between the blocks


def test_ten_percent_of_training_slices_are_labeled():
    s = lits117_split()
    assert len(s.labeled) == round(0.10 * len(s.train)) == 9
    assert set(s.labeled) <= set(s.train)
    assert list(s.labeled) == sorted(set(s.labeled))
    assert set(s.labeled) | set(s.unlabeled) == set(s.train) and not set(s.labeled) & set(s.unlabeled)


def test_split_is_deterministic_and_pinned():
    # The shipped model's documented split (docs/DATA.md): a numpy change to default_rng's stream would show here.
    assert lits117_split() == lits117_split()
    assert lits117_split().labeled == (15, 25, 33, 43, 45, 59, 71, 78, 82)
    assert lits117_split(seed=1).labeled != lits117_split().labeled


def test_other_sizes_and_invalid_requests():
    s = lits117_split(n_slices=40, test_fraction=0.25, gap=2)
    assert (s.train, s.gap, s.test) == (tuple(range(28)), (28, 29), tuple(range(30, 40)))
    assert len(s.labeled) == 3
    with pytest.raises(ValueError, match="cannot split 10 slices"):
        lits117_split(n_slices=10, gap=8)
