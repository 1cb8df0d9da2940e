"""Training data for the AdvMIM trainer: volumes sliced into 2D samples, the splits, augmentation and batches.

A sample is one 2D slice in the model's in-plane convention (row = NIfTI axis `row_axis`, column = `col_axis`),
after the model file's intensity transform, at its original size; augmentation and the resize to the model grid
happen per draw. Shapes: image (S, R, Cw) gray or (S, R, Cw, 3) RGB, label (S, R, Cw) int64; S slices.
"""
from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch

from .config import Case, ConfigError, TrainConfig


class DataError(ValueError):
    """An unreadable or inconsistent training file, naming it."""


# ---------------------------------------------------------------------------------------------------------------
# Intensity transform (the model file's Preprocessing.intensity; per volume, or per image for PNG)

def intensity(v: np.ndarray, pp) -> np.ndarray:
    v = v.astype(np.float32)
    if pp.intensity == "none":
        return v
    if pp.intensity == "window":
        lo, hi = np.float32(pp.window_lo), np.float32(pp.window_hi)
        return (np.clip(v, lo, hi) - lo) / (hi - lo)
    if pp.intensity == "minmax":
        lo, hi = v.min(), v.max()
        return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    mean, std = v.mean(), v.std()                                       # zscore
    return (v - mean) / std if std > 0 else v - mean


# ---------------------------------------------------------------------------------------------------------------
# Loading

def _load_nifti(case: Case, pp, num_classes: int):
    import nibabel as nib
    try:
        img = nib.load(case.image).get_fdata(dtype=np.float32)
        lab = np.asanyarray(nib.load(case.label).dataobj)
    except Exception as e:                                               # nibabel raises many types
        raise DataError(f"case {case.name}: cannot read {case.image} / {case.label}: {e}") from None
    img, lab = _squeeze4d(img, case.image), _squeeze4d(lab, case.label)
    if img.shape != lab.shape:
        raise DataError(f"case {case.name}: image {case.image} has shape {img.shape} but label {case.label} "
                        f"has {lab.shape}; they must be on the same grid")
    order = (pp.slice_axis, pp.row_axis, pp.col_axis)
    img = np.ascontiguousarray(intensity(img, pp).transpose(order))      # (S, R, Cw)
    lab = np.ascontiguousarray(_labels(lab, case.label, num_classes).transpose(order))
    if pp.channels == "rgb":
        raise DataError(f"case {case.name}: a NIfTI volume is gray; set preprocessing.channels to gray")
    return img, lab


def _squeeze4d(a: np.ndarray, path: str) -> np.ndarray:
    if a.ndim == 4 and a.shape[3] == 1:
        a = a[..., 0]
    if a.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {a.shape}")
    return a


def _labels(lab: np.ndarray, path: str, num_classes: int) -> np.ndarray:
    if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
        raise DataError(f"{path}: labels must be whole numbers")
    lab = lab.astype(np.int64)
    if lab.min() < 0 or lab.max() >= num_classes:
        raise DataError(f"{path}: label values {lab.min()}..{lab.max()} are outside 0..{num_classes - 1} "
                        f"(model.num_classes {num_classes})")
    return lab


def _load_png(case: Case, pp, num_classes: int, png_mask: str):
    from PIL import Image
    try:
        im = Image.open(case.image)
        img = np.asarray(im.convert("RGB") if pp.channels == "rgb" else (im if im.mode in ("I;16", "I") else im.convert("L")))
        mask = np.asarray(Image.open(case.label))
    except Exception as e:
        raise DataError(f"case {case.name}: cannot read {case.image} / {case.label}: {e}") from None
    if mask.ndim != 2:
        raise DataError(f"{case.label}: a mask must be single-channel, got shape {mask.shape}")
    if img.shape[:2] != mask.shape:
        raise DataError(f"case {case.name}: image {img.shape[:2]} and mask {mask.shape} differ in size")
    lab = (mask > 0).astype(np.int64) if png_mask == "binary" else _labels(mask, case.label, num_classes)
    if png_mask == "binary" and num_classes < 2:
        raise DataError(f"{case.label}: a binary mask needs model.num_classes >= 2")
    return intensity(img, pp)[None], lab[None]                            # one slice


class Dataset:
    """All cases in memory, and the split of their slices into labeled / unlabeled / validation / test."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        pp, nc = cfg.preprocessing, cfg.model.num_classes
        self.images: dict[str, np.ndarray] = {}
        self.labels: dict[str, np.ndarray] = {}
        for case in cfg.data.cases:
            if cfg.data.format == "nifti":
                img, lab = _load_nifti(case, pp, nc)
            else:
                img, lab = _load_png(case, pp, nc, cfg.data.png_mask)
            self.images[case.name], self.labels[case.name] = img, lab
        self.split = make_split(cfg, {c.name: self._slices_of(c) for c in cfg.data.cases})

    def _slices_of(self, case: Case) -> list[int]:
        n = self.images[case.name].shape[0]
        if case.slices is None:
            return list(range(n))
        bad = [s for s in case.slices if not 0 <= s < n]
        if bad:
            raise DataError(f"case {case.name}: slices {bad[:5]} are outside 0..{n - 1} of {case.image}")
        return sorted(set(case.slices))

    def sample(self, key: tuple[str, int]):
        name, s = key
        return self.images[name][s], self.labels[name][s]


# ---------------------------------------------------------------------------------------------------------------
# Splits

Key = tuple[str, int]   # (case name, slice index)


class Split:
    def __init__(self, labeled, unlabeled, val, test):
        self.labeled: list[Key] = labeled
        self.unlabeled: list[Key] = unlabeled
        self.val: list[Key] = val
        self.test: list[Key] = test

    def summary(self) -> dict:
        def per_case(keys):
            out: dict[str, list[int]] = {}
            for n, s in keys:
                out.setdefault(n, []).append(s)
            return {n: _ranges(v) for n, v in out.items()}
        return {"labeled": per_case(self.labeled), "unlabeled": per_case(self.unlabeled),
                "val": per_case(self.val), "test_excluded": per_case(self.test),
                "counts": {"labeled": len(self.labeled), "unlabeled": len(self.unlabeled), "val": len(self.val),
                           "test_excluded": len(self.test)}}


def _ranges(v: list[int]) -> str:
    """[0,1,2,5,7,8] -> '0-2,5,7-8'."""
    v = sorted(v)
    out, start = [], 0
    for i in range(1, len(v) + 1):
        if i == len(v) or v[i] != v[i - 1] + 1:
            out.append(str(v[start]) if start == i - 1 else f"{v[start]}-{v[i - 1]}")
            start = i
    return ",".join(out)


def make_split(cfg: TrainConfig, slices: dict[str, list[int]]) -> Split:
    """Deterministic (seeded by optim.seed) split of the cases' slices. The test block is removed first and checked
    to be disjoint from everything the trainer touches; validation comes from what remains."""
    d = cfg.data
    rng = np.random.default_rng(cfg.optim.seed)
    names = list(slices)

    def keys_of(spec: dict[str, list[int]] | None, what: str) -> set[Key]:
        out: set[Key] = set()
        for n, ss in (spec or {}).items():
            if n not in slices:
                raise ConfigError(f"data.{what} names case {n!r}, which is not in data.cases")
            out |= {(n, s) for s in (ss if ss else slices[n])}
        return out

    test = keys_of(d.test_slices, "test_slices")
    pool = [(n, s) for n in names for s in slices[n] if (n, s) not in test]
    pool_cases = [n for n in names if any(k[0] == n for k in pool)]

    if d.val_cases is not None or d.val_slices is not None:
        val = keys_of({n: [] for n in (d.val_cases or [])}, "val_cases") | keys_of(d.val_slices, "val_slices")
    elif d.val_fraction > 0:
        k = max(1, int(round(d.val_fraction * len(pool_cases))))
        if k >= len(pool_cases):
            raise ConfigError(f"data.val_fraction {d.val_fraction} leaves no training case of {len(pool_cases)}")
        chosen = set(rng.permutation(pool_cases)[:k].tolist())
        val = {key for key in pool if key[0] in chosen}
    else:
        val = set()
    if val & test:
        raise ConfigError(f"validation and test overlap in {len(val & test)} slices, e.g. {sorted(val & test)[0]}: "
                          "validation must come from the training data")
    val = {k for k in pool if k in val}
    train = [k for k in pool if k not in val]
    train_cases = [n for n in pool_cases if any(k[0] == n for k in train)]

    if d.labeled_by == "slices":
        labeled = keys_of(d.labeled_slices, "labeled_slices")
        outside = labeled - set(train)
        if outside:
            raise ConfigError(f"data.labeled_slices has {len(outside)} slices outside the training data "
                              f"(in validation, test or unknown), e.g. {sorted(outside)[0]}")
    else:
        if d.labeled_cases is not None:
            unknown = set(d.labeled_cases) - set(train_cases)
            if unknown:
                raise ConfigError(f"data.labeled_cases {sorted(unknown)} are not training cases")
            chosen = set(d.labeled_cases)
        else:
            k = max(1, int(round(d.labeled_fraction * len(train_cases))))
            chosen = set(rng.permutation(train_cases)[:k].tolist())
        labeled = {key for key in train if key[0] in chosen}
    labeled_list = [k for k in train if k in labeled]
    unlabeled_list = [k for k in train if k not in labeled]
    if not labeled_list:
        raise ConfigError("the split leaves no labeled training slice")
    if cfg.mode != "labeled-only" and not unlabeled_list:
        raise ConfigError(f"mode {cfg.mode} needs unlabeled slices, but every training slice is labeled")
    return Split(labeled_list, unlabeled_list, sorted(val), sorted(test))


# ---------------------------------------------------------------------------------------------------------------
# Augmentation, resize, batches

def augment(image: np.ndarray, label: np.ndarray | None, cfg: TrainConfig, rng: np.random.Generator):
    """As AdvMIM's RandomGenerator: (optional SSL4MIS rot90 + flip, else) a rotation by an integer angle in
    [-max_angle, max_angle), nearest neighbour, same size; image and label alike."""
    a = cfg.augment
    if a.rot_flip and rng.random() > 0.5:
        k, axis = int(rng.integers(0, 4)), int(rng.integers(0, 2))
        image = np.flip(np.rot90(image, k, axes=(0, 1)), axis=axis)
        label = None if label is None else np.flip(np.rot90(label, k), axis=axis)
    elif a.rotate and (not a.rot_flip or rng.random() > 0.5):
        angle = int(rng.integers(-a.max_angle, a.max_angle))
        image = ndi.rotate(image, angle, axes=(1, 0), order=0, reshape=False)
        label = None if label is None else ndi.rotate(label, angle, axes=(1, 0), order=0, reshape=False)
    return image, label


def resize(image: np.ndarray, rows: int, cols: int, order: int) -> np.ndarray:
    """scipy zoom of the first two axes to rows x cols (RGB channels untouched)."""
    R, Cw = image.shape[:2]
    factors = (rows / R, cols / Cw) + (1,) * (image.ndim - 2)
    return ndi.zoom(image, factors, order=order)


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """[(R, Cw) | (R, Cw, 3)] -> (B, 1|3, R, Cw) float32."""
    a = np.stack(images).astype(np.float32)
    return torch.from_numpy(a[:, None] if a.ndim == 3 else a.transpose(0, 3, 1, 2).copy())


class Batches:
    """Two endless streams of shuffled keys (labeled, unlabeled), as SSL4MIS's TwoStreamBatchSampler: each stream
    walks a fresh permutation and reshuffles when it runs out. Its state is saved for exact resume."""

    def __init__(self, ds: Dataset, cfg: TrainConfig, rng: np.random.Generator):
        self.ds, self.cfg, self.rng = ds, cfg, rng
        self.streams = {"labeled": ds.split.labeled, "unlabeled": ds.split.unlabeled}
        self.order = {k: [] for k in self.streams}
        self.pos = {k: 0 for k in self.streams}

    def _take(self, which: str, n: int) -> list[Key]:
        keys = self.streams[which]
        out = []
        while len(out) < n:
            if self.pos[which] >= len(self.order[which]):
                self.order[which] = self.rng.permutation(len(keys)).tolist()
                self.pos[which] = 0
            out.append(keys[self.order[which][self.pos[which]]])
            self.pos[which] += 1
        return out

    def next(self):
        """-> x_l (Bl, ch, img, img), y_l (Bl, img, img) int64, x_u (Bu, ch, img, img) or None."""
        cfg, size = self.cfg, self.cfg.model.img_size
        o = cfg.optim
        xs, ys = [], []
        for key in self._take("labeled", o.labeled_batch):
            img, lab = augment(*self.ds.sample(key), cfg, self.rng)
            xs.append(resize(img, size, size, cfg.preprocessing.image_order))
            ys.append(resize(lab, size, size, 0))
        xu = None
        if cfg.mode != "labeled-only":
            us = []
            for key in self._take("unlabeled", o.batch_size - o.labeled_batch):
                img, _ = augment(self.ds.sample(key)[0], None, cfg, self.rng)
                us.append(resize(img, size, size, cfg.preprocessing.image_order))
            xu = to_tensor(us)
        return to_tensor(xs), torch.from_numpy(np.stack(ys).astype(np.int64)), xu

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "order": self.order, "pos": self.pos}

    def restore(self, state: dict):
        self.rng.bit_generator.state = state["rng"]
        self.order, self.pos = state["order"], state["pos"]
