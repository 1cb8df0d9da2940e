"""One AdvMIM iteration (advmim-training.md): the networks S, C, D_s, D_c, their optimisers, the loss terms and
the step order (generator backward, clip, step S and C; then discriminator backward, clip, step D_s and D_c).

Ablation modes switch the terms on in the paper's order (its Table 1):
    labeled-only  CE + Dice of S on labeled slices (C, D not built)
    +ct           + C's supervised terms, + cross teaching 0.1 Dice(p_S(x_u), yhat_C) + 0.1 Dice(p_C(x_u), yhat_S)
    +mdl          + masked domain learning: CE of S_m(x_l), CE + Dice of C_m(x_l), and the certainty-weighted
                    wCE(S_m(x_u), yhat_C, w_C) + wCE(C_m(x_u), yhat_S, w_S)
    +adv-s        + 0.001 (D_s(p_S_m(x_u)) - 1)^2, and D_s trained: 0.1 [(D_s(p_S(x_l)) - 1)^2 + D_s(p_S_m(x_u))^2]
    full          + the same for C with D_c
Shapes: x_l (Bl, ch, img, img), y_l (Bl, img, img), x_u (Bu, ch, img, img); masks on the token grid (S) and the
pixel grid (C).
"""
from __future__ import annotations

import numpy as np
import torch

from segment_torch import BlockMaskGenerator, Discriminator, MiMSwinUNet, MiMUNet

from .config import MODES, TrainConfig
from .losses import ce_loss, dice_loss, lsgan, pseudo_labels, weighted_ce


def uses(mode: str, stage: str) -> bool:
    """Whether `mode` includes the ablation stage `stage` (modes are cumulative)."""
    return MODES.index(mode) >= MODES.index(stage)


class AdvMIM:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        m, o, mode = cfg.model, cfg.optim, cfg.mode
        torch.manual_seed(o.seed)
        self.S = MiMSwinUNet(m, drop_path_rate=o.drop_path_rate)
        ch = 3 if cfg.preprocessing.channels == "rgb" else 1
        self.C = MiMUNet(in_chns=ch, num_classes=m.num_classes) if uses(mode, "+ct") else None
        self.Ds = Discriminator(m.num_classes) if uses(mode, "+adv-s") else None
        self.Dc = Discriminator(m.num_classes) if uses(mode, "full") else None
        self.nets = {k: v for k, v in (("S", self.S), ("C", self.C), ("Ds", self.Ds), ("Dc", self.Dc)) if v is not None}
        self.opt = {k: torch.optim.SGD(v.parameters(), lr=o.base_lr, momentum=o.momentum, weight_decay=o.weight_decay)
                    for k, v in self.nets.items()}
        L = cfg.loss
        self.mask_s = BlockMaskGenerator(m.img_size, L.mask_block, m.patch_size, L.mask_ratio)
        self.mask_c = BlockMaskGenerator(m.img_size, L.mask_block, 1, L.mask_ratio)

    def lr(self, it: int) -> float:
        o = self.cfg.optim
        return o.base_lr * (1.0 - it / o.iterations) ** o.poly_power

    # -- the two objectives -------------------------------------------------------------------------------------

    def generator_terms(self, x_l, y_l, x_u, rng: np.random.Generator) -> tuple[dict, dict]:
        """Forward S (and C) and return (loss terms, probabilities the discriminator step needs)."""
        mode, B = self.cfg.mode, x_l.shape[0]
        masked, semi = uses(mode, "+mdl"), uses(mode, "+ct")
        t: dict[str, torch.Tensor] = {}
        keep: dict[str, torch.Tensor] = {}
        # S on [x_l; x_u] in one batch (LayerNorm only: per-sample, so batching changes nothing).
        x = torch.cat([x_l, x_u]) if semi else x_l
        if masked:
            s_all, s_all_m = self.S(x, torch.from_numpy(self.mask_s(x.shape[0], rng)))
            s_l_m, s_u_m = s_all_m[:B], s_all_m[B:]
        else:
            s_all = self.S(x)
        s_l, s_u = s_all[:B], s_all[B:]
        p_s_l = torch.softmax(s_l, 1)
        t["ce_s"], t["dice_s"] = ce_loss(s_l, y_l), dice_loss(p_s_l, y_l)
        keep["p_s_l"] = p_s_l
        if not semi:
            return t, keep
        # C on x_l and x_u separately (BatchNorm statistics per batch, as the reference).
        if masked:
            c_l, c_l_m = self.C(x_l, torch.from_numpy(self.mask_c(B, rng)))
            c_u, c_u_m = self.C(x_u, torch.from_numpy(self.mask_c(x_u.shape[0], rng)))
        else:
            c_l, c_u = self.C(x_l), self.C(x_u)
        p_c_l = torch.softmax(c_l, 1)
        t["ce_c"], t["dice_c"] = ce_loss(c_l, y_l), dice_loss(p_c_l, y_l)
        keep["p_c_l"] = p_c_l
        w_s, yhat_s = pseudo_labels(s_u)
        w_c, yhat_c = pseudo_labels(c_u)
        t["ct_s"] = dice_loss(torch.softmax(s_u, 1), yhat_c)
        t["ct_c"] = dice_loss(torch.softmax(c_u, 1), yhat_s)
        if not masked:
            return t, keep
        t["mce_s"] = ce_loss(s_l_m, y_l)
        t["mce_c"] = ce_loss(c_l_m, y_l)
        t["mdice_c"] = dice_loss(torch.softmax(c_l_m, 1), y_l)
        t["mwce_s"] = weighted_ce(s_u_m, yhat_c, w_c)
        t["mwce_c"] = weighted_ce(c_u_m, yhat_s, w_s)
        keep["p_s_u_m"], keep["p_c_u_m"] = torch.softmax(s_u_m, 1), torch.softmax(c_u_m, 1)
        if self.Ds is not None:
            t["adv_s"] = lsgan(self.Ds(keep["p_s_u_m"]), real=True)
        if self.Dc is not None:
            t["adv_c"] = lsgan(self.Dc(keep["p_c_u_m"]), real=True)
        return t, keep

    def generator_loss(self, t: dict) -> torch.Tensor:
        L = self.cfg.loss
        weight = {"ct_s": L.ct_weight, "ct_c": L.ct_weight, "adv_s": L.adv_weight, "adv_c": L.adv_weight}
        return sum(weight.get(k, 1.0) * v for k, v in t.items())

    def discriminator_terms(self, keep: dict) -> dict:
        """Real: the prediction on labeled slices; fake: the masked prediction on unlabeled slices (detached)."""
        t = {}
        for name, D, real, fake in (("d_s", self.Ds, "p_s_l", "p_s_u_m"), ("d_c", self.Dc, "p_c_l", "p_c_u_m")):
            if D is not None:
                t[name] = lsgan(D(keep[real].detach()), real=True) + lsgan(D(keep[fake].detach()), real=False)
        return t

    # -- one iteration ------------------------------------------------------------------------------------------

    def step(self, it: int, x_l, y_l, x_u, rng: np.random.Generator) -> dict[str, float]:
        o, L = self.cfg.optim, self.cfg.loss
        lr = self.lr(it)
        for opt in self.opt.values():
            for g in opt.param_groups:
                g["lr"] = lr
        for net in self.nets.values():
            net.train()
        discriminators = [d for d in (self.Ds, self.Dc) if d is not None]
        for d in discriminators:                      # the generator step never updates D
            d.requires_grad_(False)
        t, keep = self.generator_terms(x_l, y_l, x_u, rng)
        loss = self.generator_loss(t)
        generators = [k for k in ("S", "C") if k in self.nets]
        for k in generators:
            self.opt[k].zero_grad(set_to_none=True)
        loss.backward()
        for k in generators:
            torch.nn.utils.clip_grad_norm_(self.nets[k].parameters(), o.grad_clip)
            self.opt[k].step()
        out = {k: v.item() for k, v in t.items()}
        out["loss"], out["lr"] = loss.item(), lr
        if discriminators:
            for d in discriminators:
                d.requires_grad_(True)
            dt = self.discriminator_terms(keep)
            d_loss = L.d_weight * sum(dt.values())
            for k in ("Ds", "Dc"):
                if k in self.nets:
                    self.opt[k].zero_grad(set_to_none=True)
            d_loss.backward()
            for k in ("Ds", "Dc"):
                if k in self.nets:
                    torch.nn.utils.clip_grad_norm_(self.nets[k].parameters(), o.grad_clip)
                    self.opt[k].step()
            out.update({k: v.item() for k, v in dt.items()})
            out["d_loss"] = d_loss.item()
        return out

    # -- state --------------------------------------------------------------------------------------------------

    def state(self) -> dict:
        return {"nets": {k: v.state_dict() for k, v in self.nets.items()},
                "opt": {k: v.state_dict() for k, v in self.opt.items()}}

    def restore(self, state: dict):
        if set(state["nets"]) != set(self.nets):
            raise ValueError(f"the saved state holds networks {sorted(state['nets'])} but mode "
                             f"{self.cfg.mode} trains {sorted(self.nets)}")
        for k, v in self.nets.items():
            v.load_state_dict(state["nets"][k])
        for k, v in self.opt.items():
            v.load_state_dict(state["opt"][k])
