"""Experiment configuration of the AdvMIM trainer: one JSON file per experiment (trainer/configs/*.json).

Every key has the paper's default (advmim-training.md); a config file overrides what it names, and an unknown key
is an error naming it (a typo must never silently fall back to a default).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from segment_torch import SwinUNetConfig

MODES = ("labeled-only", "+ct", "+mdl", "+adv-s", "full")


class ConfigError(ValueError):
    """A configuration problem, naming the file and the key."""


@dataclass
class Preprocessing:
    """What is done to an image before the network; written into the model file (SwinUNetSpec.swift Preprocessing)."""
    channels: str = "gray"          # gray | rgb
    intensity: str = "minmax"       # none | minmax (per volume) | window | zscore (per volume)
    window_lo: float = 0.0
    window_hi: float = 0.0
    slice_axis: int = 2             # NIfTI array axis slices are taken along
    row_axis: int = 0               # model image row = this NIfTI axis (AdvMIM: 0)
    col_axis: int = 1               # model image column = this NIfTI axis (AdvMIM: 1)
    image_order: int = 0            # scipy zoom order of the image to the model grid (AdvMIM: 0)
    label_order: int = 0            # labels always nearest


@dataclass
class Case:
    """One training volume (NIfTI image + label) or image (PNG image + mask)."""
    name: str
    image: str
    label: str
    slices: list[int] | None = None   # NIfTI: only these slices (None = all)


@dataclass
class Data:
    format: str = "nifti"                     # nifti | png
    cases: list[Case] = field(default_factory=list)
    png_mask: str = "binary"                  # png: binary (mask > 0 is class 1) | label (values are labels)
    # Labeled subset of the training slices: by case (a seeded fraction of the cases, or the named cases) or by
    # slice list ({case: [slice, ...]}); slices of a labeled case are all labeled.
    labeled_by: str = "case"                  # case | slices
    labeled_fraction: float = 0.1
    labeled_cases: list[str] | None = None
    labeled_slices: dict[str, list[int]] | None = None
    # Validation split taken from the TRAINING data (never from the test block): named cases / slices, or a seeded
    # fraction of the cases. Validation slices are neither labeled nor unlabeled training data.
    val_cases: list[str] | None = None
    val_slices: dict[str, list[int]] | None = None
    val_fraction: float = 0.0
    # The held-out test block, stated so the trainer can refuse any overlap with it ({case: [slice, ...]};
    # a case listed with [] is excluded whole).
    test_slices: dict[str, list[int]] | None = None


@dataclass
class Optim:
    iterations: int = 30000
    batch_size: int = 16                       # labeled + unlabeled
    labeled_batch: int = 8
    base_lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    grad_clip: float = 5.0
    seed: int = 1337
    drop_path_rate: float = 0.2                # Swin-Unet's swin_tiny_patch4_window7_224_lite.yaml
    threads: int = 0                           # torch CPU threads (0 = torch's default)


@dataclass
class Loss:
    ct_weight: float = 0.1                     # cross-teaching Dice weight
    adv_weight: float = 0.001                  # LSGAN generator weight (lambda_adv)
    d_weight: float = 0.1                      # discriminator loss weight
    mask_ratio: float = 0.7
    mask_block: int = 32                       # pixels per side of a mask block


@dataclass
class Augment:
    rotate: bool = True                        # integer angle uniform in [-20, 20), order 0, no reshape (AdvMIM)
    max_angle: int = 20
    rot_flip: bool = False                     # SSL4MIS's random rot90 + flip (AdvMIM switches it off)


@dataclass
class Schedule:
    val_every: int = 200
    save_every: int = 3000                     # iter_N.pth / model2_iter_N.pth (AdvMIM: every 3000 late in training)
    state_every: int = 500                     # resumable training state


@dataclass
class TrainConfig:
    name: str = "advmim"
    mode: str = "full"
    model: SwinUNetConfig = field(default_factory=SwinUNetConfig)
    classes: list[str] = field(default_factory=list)   # [0] is background; default background, class1..
    class_codes: list[str] = field(default_factory=list)   # `segment convert --class-code` values (DICOM SEG codes)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    data: Data = field(default_factory=Data)
    optim: Optim = field(default_factory=Optim)
    loss: Loss = field(default_factory=Loss)
    augment: Augment = field(default_factory=Augment)
    schedule: Schedule = field(default_factory=Schedule)
    provenance: dict[str, str] = field(default_factory=dict)   # recorded in the model file (data, split, recipe ...)

    def class_names(self) -> list[str]:
        return self.classes or ["background"] + [f"class{c}" for c in range(1, self.model.num_classes)]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, raw, where: str):
    """A dataclass `cls` from dict `raw`, recursively, refusing unknown keys."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    nested = {"model": SwinUNetConfig, "preprocessing": Preprocessing, "data": Data, "optim": Optim, "loss": Loss,
              "augment": Augment, "schedule": Schedule}
    kwargs = {}
    for k, v in raw.items():
        if cls is TrainConfig and k in nested:
            kwargs[k] = _build(nested[k], v, f"{where}.{k}")
        elif cls is Data and k == "cases":
            kwargs[k] = [_build(Case, c, f"{where}.cases[{i}]") for i, c in enumerate(v)]
        else:
            kwargs[k] = v
    return cls(**kwargs)


def _read_json(path: str, seen: tuple = ()) -> dict:
    """A config file's object, with `"base": "other.json"` (relative to this file) merged under it: objects merge
    key by key, anything else (numbers, lists) is replaced."""
    if os.path.abspath(path) in seen:
        raise ConfigError(f"{path}: `base` chain loops back to itself")
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a JSON object")
    base = raw.pop("base", None)
    if base is None:
        return raw
    merged = _read_json(os.path.join(os.path.dirname(os.path.abspath(path)), base), seen + (os.path.abspath(path),))

    def merge(a: dict, b: dict) -> dict:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return out
    return merge(merged, raw)


def load_config(path: str, data_root: str | None = None) -> TrainConfig:
    """Reads a JSON config (and its `base` chain). Relative case paths are resolved against `data_root` (default:
    the env SEGMENT_DATA, else the config file's folder)."""
    cfg = _build(TrainConfig, _read_json(path), os.path.basename(path))
    root = data_root or os.environ.get("SEGMENT_DATA") or os.path.dirname(os.path.abspath(path))
    for c in cfg.data.cases:
        c.image = os.path.join(root, os.path.expanduser(c.image))
        c.label = os.path.join(root, os.path.expanduser(c.label))
    problems = validate(cfg)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return cfg


def validate(cfg: TrainConfig) -> list[str]:
    p = []
    m = cfg.model
    if cfg.mode not in MODES:
        p.append(f"mode {cfg.mode!r} is not one of {', '.join(MODES)}")
    if cfg.classes and len(cfg.classes) != m.num_classes:
        p.append(f"classes has {len(cfg.classes)} names but model.num_classes is {m.num_classes}")
    if len(m.depths) != len(m.num_heads):
        p.append("model.depths and model.num_heads differ in length")
    if m.img_size % cfg.loss.mask_block or cfg.loss.mask_block % m.patch_size:
        p.append(f"model.img_size {m.img_size} must be a multiple of loss.mask_block {cfg.loss.mask_block}, "
                 f"itself a multiple of model.patch_size {m.patch_size}")
    pp = cfg.preprocessing
    if pp.intensity not in ("none", "minmax", "window", "zscore"):
        p.append(f"preprocessing.intensity {pp.intensity!r} is not none|minmax|window|zscore")
    if pp.intensity == "window" and not pp.window_hi > pp.window_lo:
        p.append("preprocessing.window_hi must be above window_lo")
    if pp.channels not in ("gray", "rgb"):
        p.append(f"preprocessing.channels {pp.channels!r} is not gray|rgb")
    if sorted((pp.slice_axis, pp.row_axis, pp.col_axis)) != [0, 1, 2]:
        p.append("preprocessing.slice_axis, row_axis, col_axis must be 0, 1, 2 in some order")
    d, o = cfg.data, cfg.optim
    if d.format not in ("nifti", "png"):
        p.append(f"data.format {d.format!r} is not nifti|png")
    if d.labeled_by not in ("case", "slices"):
        p.append(f"data.labeled_by {d.labeled_by!r} is not case|slices")
    if not d.cases:
        p.append("data.cases is empty")
    names = [c.name for c in d.cases]
    if len(set(names)) != len(names):
        p.append("data.cases has duplicate names")
    if not 0 < o.labeled_batch <= o.batch_size:
        p.append("optim.labeled_batch must be in 1...batch_size")
    if cfg.mode != "labeled-only" and o.labeled_batch == o.batch_size:
        p.append(f"mode {cfg.mode} needs unlabeled samples: optim.batch_size must exceed optim.labeled_batch")
    if o.iterations < 1:
        p.append("optim.iterations must be >= 1")
    return p
