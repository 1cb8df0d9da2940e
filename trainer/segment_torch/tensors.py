"""The model-file tensor set (Sources/SegmentFormat/SwinUNetSpec.swift) computed from a PyTorch SwinUNet.

This is the Python statement of what `segment convert` must produce from a checkpoint:
- names are the state_dict names without `swin_unet.`;
- `attn.relative_position_bias_table` (T, heads) + `attn.relative_position_index` (N, N) become the dense
  `attn.relative_position_bias` (heads, N, N) = table[index] permuted;
- the q rows (the first C of 3C) of `attn.qkv.weight` and `attn.qkv.bias` are multiplied, in float32, by
  float32(head_dim ** -0.5);
- the buffers `attn_mask` and `relative_position_index` are dropped.
Returned in state_dict order (the format does not depend on order), every array float32 and C-contiguous.
"""
from __future__ import annotations

import numpy as np
import torch

from .model import SwinUNet


def engine_tensors(model: SwinUNet) -> dict[str, np.ndarray]:
    sd = {k.removeprefix("swin_unet."): v.detach().cpu() for k, v in model.state_dict().items()}
    out: dict[str, np.ndarray] = {}
    for name, t in sd.items():
        if name.endswith((".attn_mask", ".relative_position_index")):
            continue
        if name.endswith(".attn.relative_position_bias_table"):
            dense_name = name.removesuffix("_table")                         # ...attn.relative_position_bias
            index = sd[name.removesuffix("bias_table") + "index"]             # (N, N) int64
            N = index.shape[0]
            dense = t[index.reshape(-1)].reshape(N, N, -1).permute(2, 0, 1)  # (heads, N, N)
            out[dense_name] = np.ascontiguousarray(dense.numpy(), dtype=np.float32)
            continue
        a = np.array(t.numpy(), dtype=np.float32, copy=True)
        if name.endswith((".attn.qkv.weight", ".attn.qkv.bias")):
            C = a.shape[0] // 3
            heads = sd[name.rsplit(".qkv.", 1)[0] + ".relative_position_bias_table"].shape[1]
            a[:C] *= np.float32((C // heads) ** -0.5)
        out[name] = a
    return out
