"""The slice split of LiTS-117 used for the shipped model, by a fixed rule stated before any training:

- test: the last `test_fraction` (25 %) of the axial slices, as one contiguous block: k = 96..127, the superior end
  (the liver dome with most of the tumour). The other end is the liver's thin inferior tip, where few slices hold
  liver; one block at an end of the volume has a single boundary with the training slices.
- gap: the `gap` (8) slices just below the test block, k = 88..95, used for nothing: neighbouring slices are nearly
  identical, so this keeps the test block from being seen through its neighbours.
- train: every other slice, k = 0..87 (88 slices).
- labeled: round(labeled_fraction * len(train)) = 9 training slices (10 %), drawn without replacement by numpy's
  default_rng(seed = 1337, AdvMIM's seed); the other 79 training slices are the unlabeled pool.
"""

from dataclasses import dataclass

import numpy as np

LITS117_SLICES = 128


@dataclass(frozen=True)
class SliceSplit:
    train: tuple        # contiguous block of slice indices along the third (axial) axis
    gap: tuple          # slices between train and test, in neither
    test: tuple         # contiguous held-out block
    labeled: tuple      # sorted subset of train whose labels the trainer may use
    unlabeled: tuple    # train minus labeled


def lits117_split(n_slices: int = LITS117_SLICES, test_fraction: float = 0.25, gap: int = 8,
                  labeled_fraction: float = 0.10, seed: int = 1337) -> SliceSplit:
    n_test = round(test_fraction * n_slices)
    n_train = n_slices - n_test - gap
    if n_test < 1 or gap < 0 or n_train < 1:
        raise ValueError(f"cannot split {n_slices} slices into test {test_fraction}, gap {gap} and a training block")
    train = tuple(range(n_train))
    n_labeled = max(1, round(labeled_fraction * n_train))
    labeled = sorted(int(k) for k in np.random.default_rng(seed).choice(n_train, n_labeled, replace=False))
    return SliceSplit(train=train,
                      gap=tuple(range(n_train, n_train + gap)),
                      test=tuple(range(n_train + gap, n_slices)),
                      labeled=tuple(labeled),
                      unlabeled=tuple(sorted(set(train) - set(labeled))))
