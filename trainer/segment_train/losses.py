"""The loss terms of AdvMIM (advmim-training.md). p: softmax probabilities (B, nc, H, W); y: labels (B, H, W)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

SMOOTH = 1e-5


def dice_loss(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over ALL classes (background included) of 1 - (2 sum(p t) + s) / (sum(p^2) + sum(t^2) + s), sums over
    the batch and pixels, t the one-hot target (SSL4MIS DiceLoss)."""
    nc = p.shape[1]
    t = F.one_hot(y, nc).permute(0, 3, 1, 2).to(p.dtype)                  # (B, nc, H, W)
    dims = (0, 2, 3)
    inter, z, yy = (p * t).sum(dims), (p * p).sum(dims), (t * t).sum(dims)
    return (1.0 - (2.0 * inter + SMOOTH) / (z + yy + SMOOTH)).mean()


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pixel cross-entropy, mean."""
    return F.cross_entropy(logits, y)


def weighted_ce(logits: torch.Tensor, y_hat: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum(w * CE_pixel) / sum(w): cross-entropy against pseudo-labels weighted by their certainty w (detached)."""
    return (w * F.cross_entropy(logits, y_hat, reduction="none")).sum() / w.sum()


def lsgan(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN term: mean (D - 1)^2 for `real`, mean D^2 otherwise."""
    return F.mse_loss(scores, torch.ones_like(scores) if real else torch.zeros_like(scores))


def pseudo_labels(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(certainty w = max p, label = argmax p), both detached: (B, H, W) each."""
    w, y_hat = torch.softmax(logits.detach(), dim=1).max(dim=1)
    return w, y_hat
