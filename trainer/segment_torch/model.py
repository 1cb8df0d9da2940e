"""Swin-UNet (Cao et al.) as AdvMIM trains it: the PyTorch model the Swift engine is tested against.

Written for `segment` from the Swin-UNet paper and its public checkpoints (docs/FORMAT.md lists every tensor by
name and shape; docs/ARCHITECTURE.md shows the forward stage by stage). Module names, parameter order and buffers follow the
public checkpoints, so `SwinUNet(cfg).state_dict()` has the keys of an AdvMIM / Swin-Unet `iter_N.pth`
(all under `swin_unet.`). Dimensions, named once:
    B batch, H = W token grid side of a stage, L = H*W tokens, C channels, heads, ws window side, N = ws*ws,
    nW windows per image, E = embed_dim, P = patch_size, nc = num_classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class SwinUNetConfig:
    """Hyper-parameters (Swin-T "lite": 224/4, 3 channels, 96, [2,2,2,2], [3,6,12,24], window 7, mlp 4)."""
    img_size: int = 224
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 9
    embed_dim: int = 96
    depths: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    num_heads: list[int] = field(default_factory=lambda: [3, 6, 12, 24])
    window_size: int = 7
    mlp_ratio: float = 4.0

    @property
    def num_layers(self) -> int:
        return len(self.depths)

    @property
    def patches_resolution(self) -> int:
        return self.img_size // self.patch_size

    def stage(self, i: int) -> "StageGeometry":
        """Geometry of encoder stage i; decoder stage k uses stage(num_layers - 1 - k)."""
        res = self.patches_resolution >> i
        one_window = res <= self.window_size           # as the reference: one window, no shift
        return StageGeometry(resolution=res, dim=self.embed_dim << i, heads=self.num_heads[i], depth=self.depths[i],
                             window=res if one_window else self.window_size,
                             shift=0 if one_window else self.window_size // 2)


@dataclass(frozen=True)
class StageGeometry:
    resolution: int   # H = W
    dim: int          # C
    heads: int
    depth: int
    window: int       # ws
    shift: int        # shift of odd blocks

    def shift_of_block(self, j: int) -> int:
        return self.shift if j % 2 == 1 else 0


# ---------------------------------------------------------------------------------------------------------------
# Geometry helpers (pure functions of the window / shift; the engine recomputes the same things)

def relative_position_index(ws: int) -> torch.Tensor:
    """(N, N) int64: index into the (2ws-1)^2 bias table of the offset between window tokens i and j."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)  # (2, N)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)                        # (N, N, 2)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B*nW, ws, ws, C), windows row-major."""
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, C)


def window_reverse(windows: torch.Tensor, ws: int, H: int, W: int) -> torch.Tensor:
    """(B*nW, ws, ws, C) -> (B, H, W, C)."""
    B = windows.shape[0] // ((H // ws) * (W // ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, -1)


def shifted_window_mask(res: int, ws: int, shift: int) -> torch.Tensor:
    """(nW, N, N) float32: -100 between tokens that came from different regions of the rolled image, else 0."""
    labels = torch.zeros(1, res, res, 1)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    n = 0
    for hs in cuts:
        for wsl in cuts:
            labels[:, hs, wsl, :] = n
            n += 1
    lw = window_partition(labels, ws).view(-1, ws * ws)                  # (nW, N)
    differ = lw[:, None, :] != lw[:, :, None]                            # (nW, N, N)
    return torch.zeros(differ.shape).masked_fill(differ, -100.0)


# ---------------------------------------------------------------------------------------------------------------
# Layers

class DropPath(nn.Module):
    """Stochastic depth (training only; identity at inference and when p == 0). Has no state."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device) >= self.p
        return x * keep / (1.0 - self.p)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()                       # exact erf form
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ws x ws windows with a learned relative position bias."""

    def __init__(self, dim: int, ws: int, heads: int):
        super().__init__()
        self.ws, self.heads = ws, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))   # (T, heads)
        self.register_buffer("relative_position_index", relative_position_index(ws))               # (N, N)
        self.qkv = nn.Linear(dim, 3 * dim)       # rows [q | k | v], heads contiguous inside each
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """(heads, N, N) dense bias gathered from the table."""
        N = self.ws * self.ws
        return self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1).permute(2, 0, 1)

    def forward(self, x, mask=None):
        """x (B_, N, C) with B_ = B*nW; mask (nW, N, N) or None."""
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)   # (3, B_, h, N, d)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1) + self.relative_position_bias().unsqueeze(0)                 # (B_, h, N, N)
        if mask is not None:
            nW = mask.shape[0]
            attn = (attn.view(B_ // nW, nW, self.heads, N, N) + mask[None, :, None]).view(B_, self.heads, N, N)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim: int, res: int, heads: int, ws: int, shift: int, mlp_ratio: float, drop_path: float = 0.0):
        super().__init__()
        self.res, self.ws, self.shift = res, ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        # Saved in checkpoints (shifted blocks only), as the reference does.
        self.register_buffer("attn_mask", shifted_window_mask(res, ws, shift) if shift > 0 else None)

    def forward(self, x):
        """x (B, L, C) -> (B, L, C)."""
        H = W = self.res
        B, L, C = x.shape
        shortcut = x
        x = self.norm1(x).view(B, H, W, C)
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(x, self.ws).view(-1, self.ws * self.ws, C)    # (B*nW, N, C)
        windows = self.attn(windows, self.attn_mask)
        x = window_reverse(windows.view(-1, self.ws, self.ws, C), self.ws, H, W)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(B, L, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """(B, in_chans, H*P, W*P) -> (B, L, E): Conv2d(k=P, s=P) then LayerNorm."""

    def __init__(self, in_chans: int, E: int, P: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, E, kernel_size=P, stride=P)
        self.norm = nn.LayerNorm(E)

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class PatchMerging(nn.Module):
    """(B, H*W, C) -> (B, H/2*W/2, 2C): 2x2 neighbours concatenated (order x00, x10, x01, x11), LN(4C), Linear."""

    def __init__(self, res: int, C: int):
        super().__init__()
        self.res = res
        self.reduction = nn.Linear(4 * C, 2 * C, bias=False)
        self.norm = nn.LayerNorm(4 * C)

    def forward(self, x):
        B, L, C = x.shape
        x = x.view(B, self.res, self.res, C)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(B, -1, 4 * C)))


class PatchExpand(nn.Module):
    """(B, H*W, C) -> (B, 2H*2W, C/2): Linear(C, 2C), 'b h w (p1 p2 c) -> b (h p1) (w p2) c', LN(C/2)."""

    def __init__(self, res: int, C: int):
        super().__init__()
        self.res = res
        self.expand = nn.Linear(C, 2 * C, bias=False)
        self.norm = nn.LayerNorm(C // 2)

    def forward(self, x):
        return self.norm(_pixel_shuffle_tokens(self.expand(x), self.res, 2))


class FinalPatchExpand_X4(nn.Module):
    """(B, H*W, E) -> (B, PH*PW, E): Linear(E, P*P*E), the same rearrange with p1 = p2 = P, LN(E).
    The reference fixes P = 4 (its only patch size); any P maps the tokens back to the image grid."""

    def __init__(self, res: int, E: int, P: int):
        super().__init__()
        self.res, self.P = res, P
        self.expand = nn.Linear(E, P * P * E, bias=False)
        self.norm = nn.LayerNorm(E)

    def forward(self, x):
        return self.norm(_pixel_shuffle_tokens(self.expand(x), self.res, self.P))


def _pixel_shuffle_tokens(x: torch.Tensor, res: int, p: int) -> torch.Tensor:
    """Depth to space (a pixel shuffle on tokens): (B, res*res, p*p*c) -> (B, (res*p)^2, c) with channel index p1*p*c + p2*c + ci going to pixel (h*p+p1, w*p+p2)."""
    B, L, PPc = x.shape
    c = PPc // (p * p)
    x = x.view(B, res, res, p, p, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, res * p * res * p, c)


class BasicLayer(nn.Module):
    """Encoder stage: `depth` blocks then an optional PatchMerging (`downsample`)."""

    def __init__(self, g: StageGeometry, mlp_ratio: float, dpr: list[float], downsample: bool):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(g.dim, g.resolution, g.heads, g.window, g.shift_of_block(j), mlp_ratio, dpr[j])
            for j in range(g.depth)])
        self.downsample = PatchMerging(g.resolution, g.dim) if downsample else None


class BasicLayerUp(nn.Module):
    """Decoder stage: `depth` blocks then an optional PatchExpand (`upsample`)."""

    def __init__(self, g: StageGeometry, mlp_ratio: float, dpr: list[float], upsample: bool):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(g.dim, g.resolution, g.heads, g.window, g.shift_of_block(j), mlp_ratio, dpr[j])
            for j in range(g.depth)])
        self.upsample = PatchExpand(g.resolution, g.dim) if upsample else None


def _run_stage(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    for blk in layer.blocks:
        x = blk(x)
    return x


class SwinTransformerSys(nn.Module):
    """The Swin-UNet itself (the reference's `SwinTransformerSys`, ape False, patch_norm True, expand_first)."""

    def __init__(self, cfg: SwinUNetConfig, drop_path_rate: float = 0.0):
        super().__init__()
        self.cfg = cfg
        L_, E, P = cfg.num_layers, cfg.embed_dim, cfg.patch_size
        dpr = torch.linspace(0, drop_path_rate, sum(cfg.depths)).tolist()     # stochastic depth per encoder block
        first = [sum(cfg.depths[:i]) for i in range(L_)]
        self.patch_embed = PatchEmbed(cfg.in_chans, E, P)
        self.layers = nn.ModuleList([
            BasicLayer(cfg.stage(i), cfg.mlp_ratio, dpr[first[i]:first[i] + cfg.depths[i]], downsample=i < L_ - 1)
            for i in range(L_)])
        self.layers_up = nn.ModuleList()
        self.concat_back_dim = nn.ModuleList()
        for k in range(L_):
            g = cfg.stage(L_ - 1 - k)   # decoder stage k works at the geometry of encoder stage L-1-k
            if k == 0:
                self.layers_up.append(PatchExpand(g.resolution, g.dim))
                self.concat_back_dim.append(nn.Identity())
            else:
                s = L_ - 1 - k
                self.layers_up.append(BasicLayerUp(g, cfg.mlp_ratio, dpr[first[s]:first[s] + cfg.depths[s]],
                                                   upsample=k < L_ - 1))
                self.concat_back_dim.append(nn.Linear(2 * g.dim, g.dim))
        self.norm = nn.LayerNorm(cfg.stage(L_ - 1).dim)
        self.norm_up = nn.LayerNorm(E)
        self.up = FinalPatchExpand_X4(cfg.patches_resolution, E, P)
        self.output = nn.Conv2d(E, cfg.num_classes, kernel_size=1, bias=False)
        self.apply(_init_weights)

    def embed(self, x):
        """(B, in_chans, img, img) -> (B, L, E): the patch embedding (where AdvMIM applies its mask token)."""
        return self.patch_embed(x)

    def forward_tokens(self, x, stages: dict | None = None):
        """Tokens after the patch embedding (B, L, E) -> logits (B, nc, img, img). Fills `stages` if given."""
        def keep(name, t):
            if stages is not None:
                stages[name] = t
        L_ = self.cfg.num_layers
        skips = []                                       # skips[i] (B, L_i, C_i): input of encoder stage i
        for i, layer in enumerate(self.layers):
            skips.append(x)
            x = _run_stage(layer, x)
            keep(f"encoder.{i}", x)
            if layer.downsample is not None:
                x = layer.downsample(x)
        x = self.norm(x)
        keep("bottleneck", x)
        for k, layer_up in enumerate(self.layers_up):
            if k == 0:
                x = layer_up(x)
            else:
                x = self.concat_back_dim[k](torch.cat([x, skips[L_ - 1 - k]], -1))
                x = _run_stage(layer_up, x)
                if layer_up.upsample is not None:
                    x = layer_up.upsample(x)
            keep(f"decoder.{k}", x)
        x = self.norm_up(x)
        keep("norm_up", x)
        x = self.up(x)                                   # (B, img*img, E)
        keep("up", x)
        B, _, E = x.shape
        img = self.cfg.img_size
        logits = self.output(x.view(B, img, img, E).permute(0, 3, 1, 2))   # (B, nc, img, img)
        keep("logits", logits)
        return logits

    def forward(self, x, stages: dict | None = None):
        x = self.embed(x)
        if stages is not None:
            stages["patch_embed"] = x
        return self.forward_tokens(x, stages)


def _init_weights(m: nn.Module):
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class SwinUNet(nn.Module):
    """The wrapper a checkpoint is saved from: the net is `.swin_unet`; a 1-channel input is repeated to 3."""

    def __init__(self, cfg: SwinUNetConfig | None = None, drop_path_rate: float = 0.0):
        super().__init__()
        self.cfg = cfg or SwinUNetConfig()
        self.swin_unet = SwinTransformerSys(self.cfg, drop_path_rate)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1 and self.cfg.in_chans == 3:
            x = x.repeat(1, 3, 1, 1)
        return x

    def forward(self, x, stages: dict | None = None):
        """x (B, 1 | in_chans, img, img) -> logits (B, nc, img, img)."""
        return self.swin_unet(self.prepare(x), stages)
