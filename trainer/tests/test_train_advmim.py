"""The AdvMIM iteration: loss terms per ablation mode, learning, masks, the adversarial objectives, checkpoints."""
import copy

import numpy as np
import pytest
import torch

from segment_torch import read_key_list, state_layout
from segment_train.advmim import AdvMIM
from segment_train.config import MODES, load_config
from segment_train.losses import dice_loss, lsgan, weighted_ce

TERMS = {
    "labeled-only": {"ce_s", "dice_s"},
    "+ct": {"ce_s", "dice_s", "ce_c", "dice_c", "ct_s", "ct_c"},
    "+mdl": {"ce_s", "dice_s", "ce_c", "dice_c", "ct_s", "ct_c", "mce_s", "mce_c", "mdice_c", "mwce_s", "mwce_c"},
}
TERMS["+adv-s"] = TERMS["+mdl"] | {"adv_s", "d_s", "d_loss"}
TERMS["full"] = TERMS["+adv-s"] | {"adv_c", "d_c"}


def batch(cfg, seed=0):
    """A fixed synthetic batch: a bright square labeled 1 with a brighter centre labeled 2."""
    g = torch.Generator().manual_seed(seed)
    n, o = cfg.model.img_size, cfg.optim
    y = torch.zeros(o.labeled_batch, n, n, dtype=torch.long)
    y[:, n // 4: 3 * n // 4, n // 4: 3 * n // 4] = 1
    y[:, 3 * n // 8: 5 * n // 8, 3 * n // 8: 5 * n // 8] = 2
    x_l = (y.float() / 2 + 0.1 * torch.rand(y.shape, generator=g)).unsqueeze(1)
    x_u = torch.rand(o.batch_size - o.labeled_batch, 1, n, n, generator=g)
    return x_l, y, x_u


@pytest.mark.parametrize("mode", MODES)
def test_one_iteration_of_each_mode_has_its_terms_all_finite(make_config, mode):
    cfg = load_config(*make_config(mode))
    trainer = AdvMIM(cfg)
    out = trainer.step(0, *batch(cfg), np.random.default_rng(0))
    assert set(out) - {"loss", "lr"} == TERMS[mode]
    assert all(np.isfinite(v) for v in out.values()), out
    weights = {"ct_s": 0.1, "ct_c": 0.1, "adv_s": 0.001, "adv_c": 0.001}
    g_terms = TERMS[mode] - {"d_s", "d_c", "d_loss"}
    assert out["loss"] == pytest.approx(sum(weights.get(k, 1.0) * out[k] for k in g_terms), rel=1e-5)
    if "d_loss" in out:
        assert out["d_loss"] == pytest.approx(0.1 * (out["d_s"] + out.get("d_c", 0.0)), rel=1e-5)
    assert out["lr"] == cfg.optim.base_lr                  # poly decay starts at the base rate


def test_poly_learning_rate(make_config):
    cfg = load_config(*make_config("labeled-only", iterations=100, base_lr=0.05))
    t = AdvMIM(cfg)
    assert [t.lr(i) for i in (0, 50, 99)] == pytest.approx([0.05, 0.05 * 0.5 ** 0.9, 0.05 * 0.01 ** 0.9])


def test_overfitting_one_batch_lowers_the_supervised_loss(make_config):
    cfg = load_config(*make_config("labeled-only", iterations=1000, drop_path_rate=0.0))
    trainer = AdvMIM(cfg)
    b, rng = batch(cfg), np.random.default_rng(0)
    first = trainer.step(0, *b, rng)
    for it in range(1, 30):
        last = trainer.step(it, *b, rng)
    for k in ("ce_s", "dice_s"):
        assert last[k] < 0.6 * first[k], (k, first[k], last[k])


def test_masks_have_35_of_49_blocks_and_reach_the_networks(make_config):
    import json
    path, root = make_config("full")
    raw = json.load(open(path))
    raw["model"] = {"num_classes": 3}                       # Swin-T 224 and mask blocks of 32 pixels
    raw["loss"] = {}
    json.dump(raw, open(path, "w"))
    t = AdvMIM(load_config(path, root))
    ms = t.mask_s(3, np.random.default_rng(1))              # (3, 56, 56) token grid
    mc = t.mask_c(3, np.random.default_rng(1))              # (3, 224, 224) pixel grid
    assert ms.shape == (3, 56, 56) and mc.shape == (3, 224, 224)
    assert (ms[:, ::8, ::8].reshape(3, -1).sum(1) == 35).all() and (mc[:, ::32, ::32].reshape(3, -1).sum(1) == 35).all()
    assert ms.sum() == 3 * 35 * 64 and mc.sum() == 3 * 35 * 1024
    # S puts its mask token exactly where the mask is 1 and leaves other tokens alone
    net = t.S.swin_unet
    x = torch.randn(3, 56 * 56, 96)
    xm = net.mask_tokens(x, torch.from_numpy(ms))
    w = torch.from_numpy(ms).flatten(1).bool()
    assert torch.equal(xm[~w], x[~w])
    assert torch.equal(xm[w], net.mask_token.expand(3, -1, -1)[w])


def test_discriminator_step_lowers_the_discriminator_loss(make_config):
    cfg = load_config(*make_config("full", drop_path_rate=0.0))
    t = AdvMIM(cfg)
    _, keep = t.generator_terms(*batch(cfg), np.random.default_rng(0))
    keep = {k: v.detach() for k, v in keep.items()}
    before = {k: v.item() for k, v in t.discriminator_terms(keep).items()}
    for _ in range(3):
        loss = sum(t.discriminator_terms(keep).values())
        for k in ("Ds", "Dc"):
            t.opt[k].zero_grad()
        loss.backward()
        for k in ("Ds", "Dc"):
            t.opt[k].step()
    after = {k: v.item() for k, v in t.discriminator_terms(keep).items()}
    for k in before:
        assert after[k] < before[k], (k, before[k], after[k])


def test_generator_adversarial_term_moves_towards_what_d_scores_real(make_config):
    cfg = load_config(*make_config("+adv-s", drop_path_rate=0.0))
    t = AdvMIM(cfg)
    t.S.eval()      # no dropout / drop path; masks come from a fixed rng, so both forwards see the same input
    b = batch(cfg)

    def d_score():
        t_, keep = t.generator_terms(*b, np.random.default_rng(5))
        return t_["adv_s"], t.Ds(keep["p_s_u_m"]).mean()

    adv, score = d_score()
    t.opt["S"].zero_grad()
    adv.backward()                                          # the adversarial term alone
    t.opt["S"].step()
    adv2, score2 = d_score()
    assert adv2.item() < adv.item() and score2.item() > score.item()
    # and the term itself is (D - 1)^2: lower for an output D scores as real
    scores = torch.tensor([[0.9]]), torch.tensor([[0.1]])
    assert lsgan(scores[0], real=True) < lsgan(scores[1], real=True)
    assert lsgan(scores[1], real=False) < lsgan(scores[0], real=False)


def test_loss_definitions():
    p = torch.tensor([[[[0.8]], [[0.2]]], [[[0.4]], [[0.6]]]])       # (B=2, nc=2, 1, 1)
    y = torch.tensor([[[0]], [[1]]])
    # class 0: inter 0.8, sum p^2 0.64+0.16, sum t^2 1; class 1: inter 0.6, sum p^2 0.04+0.36, sum t^2 1
    want = ((1 - (1.6 + 1e-5) / (0.8 + 1 + 1e-5)) + (1 - (1.2 + 1e-5) / (0.4 + 1 + 1e-5))) / 2
    assert dice_loss(p, y).item() == pytest.approx(want, rel=1e-6)
    logits = torch.log(p)
    w = torch.tensor([[[1.0]], [[3.0]]])
    assert weighted_ce(logits, y, w).item() == pytest.approx((-np.log(0.8) - 3 * np.log(0.6)) / 4, rel=1e-6)


def test_checkpoint_layouts_match_the_reference_lists(make_config):
    import json
    path, root = make_config("full")
    raw = json.load(open(path))
    raw["model"] = {"num_classes": 4}
    raw.pop("classes")
    raw["loss"] = {}
    json.dump(raw, open(path, "w"))
    t = AdvMIM(load_config(path, root))
    assert state_layout(t.S.state_dict()) == read_key_list("advmim-mim-swin-unet-nc4.txt")
    assert state_layout(t.C.state_dict()) == read_key_list("advmim-mim-unet-nc4.txt")
