"""Writing checkpoints in every layout users bring to `segment convert` (the converter's fixtures use this)."""
from __future__ import annotations

import os
import re
from collections import OrderedDict

import torch

from .advmim import MiMSwinUNet
from .model import SwinUNet

LAYOUTS = ("zip", "legacy", "dataparallel", "nested-state_dict", "nested-model")


def save_checkpoint(state_dict: dict, path: str, layout: str = "zip") -> None:
    """Save `state_dict` as:
    zip                torch.save(sd) (PyTorch >= 1.6 zip format)
    legacy             torch.save(sd, _use_new_zipfile_serialization=False) (the old pickle stream)
    dataparallel       keys prefixed `module.` (saved from nn.DataParallel), zip format
    nested-state_dict  {"state_dict": sd}, zip format
    nested-model       {"model": sd}, zip format"""
    sd = OrderedDict(state_dict)
    if layout == "zip":
        torch.save(sd, path)
    elif layout == "legacy":
        torch.save(sd, path, _use_new_zipfile_serialization=False)
    elif layout == "dataparallel":
        torch.save(OrderedDict(("module." + k, v) for k, v in sd.items()), path)
    elif layout == "nested-state_dict":
        torch.save({"state_dict": sd}, path)
    elif layout == "nested-model":
        torch.save({"model": sd}, path)
    else:
        raise ValueError(f"unknown checkpoint layout {layout!r}; use one of {', '.join(LAYOUTS)}")


def advmim_state_dict(model: SwinUNet, seed: int = 0) -> OrderedDict:
    """The state_dict AdvMIM would save (`iter_N.pth`) for a net with `model`'s inference weights: the MiM wrapper's
    layout (mask_token, decoder, projection/prediction heads, class selectors) with those extra tensors drawn from
    `seed`, and every `swin_unet.*` inference tensor equal to `model`'s."""
    torch.manual_seed(seed)
    wrapper = MiMSwinUNet(model.cfg)
    missing, unexpected = wrapper.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(("swin_unet.mask_token", "swin_unet.decoder.", "projection_head.",
                                                "prediction_head.", "contrastive_class_selector")) for k in missing)
    return wrapper.state_dict()


KEY_LISTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoint_keys")


def read_key_list(name: str) -> list[tuple[str, tuple[int, ...], str]]:
    """[(key, shape, dtype)] of a public checkpoint's key list (checkpoint_keys/NAME: lines 'key (d0, d1) float32')."""
    rows = []
    with open(os.path.join(KEY_LISTS, name)) as f:
        for line in f.read().splitlines():
            if not line.strip():
                continue
            m = re.fullmatch(r"(\S+) \(([\d, ]*)\) (\w+)", line)
            if not m:
                raise ValueError(f"unparsable line in {name}: {line!r}")
            rows.append((m.group(1), tuple(int(d) for d in m.group(2).replace(" ", "").split(",") if d), m.group(3)))
    return rows


def state_layout(state_dict: dict) -> list[tuple[str, tuple[int, ...], str]]:
    """[(key, shape, dtype)] of a state_dict, in its order, in the key lists' notation."""
    return [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state_dict.items()]
