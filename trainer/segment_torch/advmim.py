"""The networks AdvMIM trains (advmim-training.md), laid out so their state_dicts equal the public checkpoints:

- `MiMSwinUNet` (S): the Swin-UNet with a learnable per-token mask token applied after the patch-embedding LN; the
  masked stream runs through the same encoder/decoder with its own skips. Its state_dict is an AdvMIM `iter_N.pth`
  (`swin_unet.mask_token` first, `swin_unet.decoder` after `output`, then the contrastive heads the training loss
  does not use but the checkpoints carry).
- `MiMUNet` (C): the SSL4MIS UNet (feature channels 16..256) with a mask token (1,16,1,1) on its first feature map
  (`model2_iter_N.pth`).
- `Discriminator` (D_s, D_c): five 4x4 stride-2 convolutions on softmax probabilities, a (B,1,img/32,img/32) map.
- `BlockMaskGenerator`: 32x32-pixel blocks, exactly ceil(ratio * blocks) masked per sample.
Dimensions: B batch, L tokens, E embed_dim, F feature channels of C, nc classes, G = img/block blocks per side.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import SwinUNet, SwinUNetConfig, SwinTransformerSys


class BlockMaskGenerator:
    """Masks of (B, G*scale, G*scale) ints in {0,1}: G x G blocks, exactly ceil(G*G*ratio) of them set per sample,
    drawn uniformly without replacement; each block covers `scale` = block / unit cells of the output grid
    (unit 4 gives the Swin token grid, unit 1 the pixel grid of C)."""

    def __init__(self, input_size: int = 224, block: int = 32, unit: int = 4, ratio: float = 0.7):
        if input_size % block or block % unit:
            raise ValueError(f"input size {input_size} must be a multiple of block {block}, and block of unit {unit}")
        self.G = input_size // block
        self.scale = block // unit
        self.count = int(math.ceil(self.G * self.G * ratio))

    def __call__(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        masks = np.zeros((batch, self.G * self.G), dtype=np.int64)
        for b in range(batch):
            masks[b, rng.permutation(self.G * self.G)[:self.count]] = 1
        masks = masks.reshape(batch, self.G, self.G)
        return masks.repeat(self.scale, axis=1).repeat(self.scale, axis=2)


# ---------------------------------------------------------------------------------------------------------------
# S: masked Swin-UNet

def _mlp_head(E: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(E, E), nn.BatchNorm1d(E), nn.ReLU(inplace=True), nn.Linear(E, E))


def _selector(E: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(E, E), nn.LeakyReLU(0.2, inplace=True), nn.Linear(E, 1))


class MiMSwinTransformerSys(SwinTransformerSys):
    def __init__(self, cfg: SwinUNetConfig, drop_path_rate: float = 0.0):
        super().__init__(cfg, drop_path_rate)
        L, E = cfg.patches_resolution ** 2, cfg.embed_dim
        self.decoder = nn.Conv2d(E, E, kernel_size=1, bias=False)          # reconstruction head, kept for the layout
        self.mask_token = nn.Parameter(torch.zeros(1, L, E))                 # (1, L, E), one token per position
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def mask_tokens(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, L, E) embedded tokens, mask (B, H, W) in {0,1} on the token grid -> x*(1-w) + token*w."""
        w = mask.flatten(1).unsqueeze(-1).to(x.dtype)                       # (B, L, 1)
        return x * (1.0 - w) + self.mask_token * w


class MiMSwinUNet(nn.Module):
    """S. `forward(x)` gives plain logits; `forward(x, mask)` gives (logits, masked-stream logits)."""

    def __init__(self, cfg: SwinUNetConfig | None = None, drop_path_rate: float = 0.0):
        super().__init__()
        self.cfg = cfg or SwinUNetConfig()
        E = self.cfg.embed_dim
        self.swin_unet = MiMSwinTransformerSys(self.cfg, drop_path_rate)
        self.projection_head = _mlp_head(E)
        self.prediction_head = _mlp_head(E)
        for c in range(self.cfg.num_classes):
            setattr(self, f"contrastive_class_selector_{c}", _selector(E))
        for c in range(self.cfg.num_classes):
            setattr(self, f"contrastive_class_selector_memory{c}", _selector(E))

    prepare = SwinUNet.prepare

    def forward(self, x, mask: torch.Tensor | None = None):
        """x (B, 1|in_chans, img, img); mask (B, img/P, img/P) or None."""
        net = self.swin_unet
        tokens = net.embed(self.prepare(x))                                  # (B, L, E)
        if mask is None:
            return net.forward_tokens(tokens)
        # Both streams in one batch of 2B (every layer acts per sample): larger matrix products, same result.
        both = net.forward_tokens(torch.cat([tokens, net.mask_tokens(tokens, mask)]))
        return both[:x.shape[0]], both[x.shape[0]:]

    def plain(self) -> SwinUNet:
        """A SwinUNet holding copies of this model's inference weights."""
        m = SwinUNet(self.cfg)
        m.load_state_dict(plain_state_dict(self.state_dict()))
        return m


def plain_state_dict(advmim_sd: dict) -> dict:
    """The inference keys (`swin_unet.*` without mask_token / decoder) of an AdvMIM S state_dict."""
    drop = ("swin_unet.mask_token", "swin_unet.decoder.")
    return {k: v for k, v in advmim_sd.items() if k.startswith("swin_unet.") and not k.startswith(drop)}


# ---------------------------------------------------------------------------------------------------------------
# C: masked UNet

class ConvBlock(nn.Module):
    """Conv3x3 + BN + LeakyReLU(0.01) + Dropout(p) + Conv3x3 + BN + LeakyReLU(0.01)."""

    def __init__(self, cin: int, cout: int, p: float):
        super().__init__()
        self.conv_conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.01), nn.Dropout(p),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.01))

    def forward(self, x):
        return self.conv_conv(x)


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, p: float):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), ConvBlock(cin, cout, p))

    def forward(self, x):
        return self.maxpool_conv(x)


class UpBlock(nn.Module):
    """Conv1x1 (c1 -> c2), bilinear x2 (align_corners), concat [skip, up], ConvBlock(2*c2 -> cout, p 0)."""

    def __init__(self, c1: int, c2: int, cout: int):
        super().__init__()
        self.conv1x1 = nn.Conv2d(c1, c2, kernel_size=1)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = ConvBlock(2 * c2, cout, 0.0)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(self.conv1x1(x))], dim=1))


class MiMEncoder(nn.Module):
    def __init__(self, in_chns: int, F_: list[int], dropout: list[float]):
        super().__init__()
        self.in_conv = ConvBlock(in_chns, F_[0], dropout[0])
        self.down1 = DownBlock(F_[0], F_[1], dropout[1])
        self.down2 = DownBlock(F_[1], F_[2], dropout[2])
        self.down3 = DownBlock(F_[2], F_[3], dropout[3])
        self.down4 = DownBlock(F_[3], F_[4], dropout[4])
        self.mask_token = nn.Parameter(torch.zeros(1, F_[0], 1, 1))        # (1, F0, 1, 1), one token for all pixels
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def deeper(self, x0):
        """x0 (B, F0, H, W) -> the five feature maps [x0 .. x4]."""
        feats = [x0]
        for down in (self.down1, self.down2, self.down3, self.down4):
            feats.append(down(feats[-1]))
        return feats


class MiMDecoder(nn.Module):
    def __init__(self, F_: list[int], nc: int):
        super().__init__()
        self.up1 = UpBlock(F_[4], F_[3], F_[3])
        self.up2 = UpBlock(F_[3], F_[2], F_[2])
        self.up3 = UpBlock(F_[2], F_[1], F_[1])
        self.up4 = UpBlock(F_[1], F_[0], F_[0])
        self.out_conv = nn.Conv2d(F_[0], nc, kernel_size=3, padding=1)
        self.decoder = nn.Conv2d(F_[0], F_[0], kernel_size=1)              # reconstruction head, kept for the layout

    def forward(self, feats):
        x0, x1, x2, x3, x4 = feats
        x = self.up4(self.up3(self.up2(self.up1(x4, x3), x2), x1), x0)
        return self.out_conv(x)


class MiMUNet(nn.Module):
    """C. `forward(x)` gives logits; `forward(x, mask)` also the masked stream (mask (B, H, W) on the pixel grid)."""

    def __init__(self, in_chns: int = 1, num_classes: int = 4, feature_chns=(16, 32, 64, 128, 256),
                 dropout=(0.05, 0.1, 0.2, 0.3, 0.5)):
        super().__init__()
        F_ = list(feature_chns)
        self.encoder = MiMEncoder(in_chns, F_, list(dropout))
        self.decoder = MiMDecoder(F_, num_classes)
        self.projection_head = _mlp_head(F_[0])
        self.prediction_head = _mlp_head(F_[0])
        for c in range(num_classes):
            setattr(self, f"contrastive_class_selector_{c}", _selector(F_[0]))
        for c in range(num_classes):
            setattr(self, f"contrastive_class_selector_memory{c}", _selector(F_[0]))

    def forward(self, x, mask: torch.Tensor | None = None):
        x0 = self.encoder.in_conv(x)                      # (B, F0, H, W)
        logits = self.decoder(self.encoder.deeper(x0))
        if mask is None:
            return logits
        w = mask.unsqueeze(1).to(x0.dtype)                # (B, 1, H, W)
        x0m = x0 * (1.0 - w) + self.encoder.mask_token * w
        return logits, self.decoder(self.encoder.deeper(x0m))


# ---------------------------------------------------------------------------------------------------------------
# D: patch discriminator (LSGAN: no norm, no sigmoid)

class Discriminator(nn.Module):
    """(B, nc, img, img) probabilities -> (B, 1, img/32, img/32) realness scores."""

    def __init__(self, num_classes: int, ndf: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(num_classes, ndf, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(ndf, ndf * 2, 4, stride=2, padding=1)
        self.conv3 = nn.Conv2d(ndf * 2, ndf * 4, 4, stride=2, padding=1)
        self.conv4 = nn.Conv2d(ndf * 4, ndf * 8, 4, stride=2, padding=1)
        self.classifier = nn.Conv2d(ndf * 8, 1, 4, stride=2, padding=1)

    def forward(self, p):
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            p = F.leaky_relu(conv(p), 0.2)
        return self.classifier(p)
