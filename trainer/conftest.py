# pytest configuration for trainer/: makes the trainer packages importable from any working directory, and gives
# the trainer tests a small synthetic NIfTI data set and a tiny configuration.
import json
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The tests' networks are tiny: one thread is fastest, and it stays fast on a machine shared with other jobs
# (several OpenMP threads per process on 2 busy cores spin and slow everything down by an order of magnitude).
torch.set_num_threads(1)


def write_synthetic_nifti(folder: str, cases: int = 3, shape=(40, 36, 10), seed: int = 0) -> list[dict]:
    """Volumes of noise with a bright disk (class 1) holding a brighter disk (class 2) whose centre drifts with the
    slice; returns the config `cases` entries (paths relative to `folder`)."""
    import nibabel as nib
    rng = np.random.default_rng(seed)
    R, C, S = shape
    rr, cc = np.mgrid[0:R, 0:C]
    entries = []
    for i in range(cases):
        img = rng.normal(0.0, 20.0, shape).astype(np.float32)
        lab = np.zeros(shape, dtype=np.uint8)
        for s in range(S):
            cy, cx = R / 2 + 6 * np.sin(s / 3 + i), C / 2 + 5 * np.cos(s / 4 + i)
            d2 = (rr - cy) ** 2 + (cc - cx) ** 2
            lab[..., s][d2 < 80] = 1
            lab[..., s][d2 < 16] = 2
        img += np.where(lab == 1, 100.0, 0.0) + np.where(lab == 2, 200.0, 0.0)
        affine = np.diag([1.5, 1.5, 3.0, 1.0])
        name = f"case{i}"
        nib.save(nib.Nifti1Image(img, affine), os.path.join(folder, f"{name}_image.nii.gz"))
        nib.save(nib.Nifti1Image(lab, affine), os.path.join(folder, f"{name}_label.nii.gz"))
        entries.append({"name": name, "image": f"{name}_image.nii.gz", "label": f"{name}_label.nii.gz"})
    return entries


def tiny_config(cases: list[dict], mode: str = "full", **optim) -> dict:
    """A configuration that trains in well under a second per iteration: 32x32 inputs, 2 stages."""
    return {
        "name": "tiny", "mode": mode,
        "model": {"img_size": 32, "patch_size": 2, "in_chans": 3, "num_classes": 3, "embed_dim": 8,
                  "depths": [2, 2], "num_heads": [1, 2], "window_size": 4, "mlp_ratio": 2.0},
        "classes": ["background", "ring", "core"],
        "preprocessing": {"intensity": "window", "window_lo": -50, "window_hi": 350},
        "data": {"format": "nifti", "cases": cases, "labeled_by": "case", "labeled_cases": ["case0"],
                 "val_cases": ["case2"]},
        "optim": {"iterations": 4, "batch_size": 4, "labeled_batch": 2, "seed": 7, **optim},
        "loss": {"mask_block": 8},
        "schedule": {"val_every": 2, "save_every": 2, "state_every": 1},
    }


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic-nifti")
    return str(folder), write_synthetic_nifti(str(folder))


@pytest.fixture
def make_config(tmp_path, synthetic_data):
    """make_config(mode, **optim) -> (path of a tiny config JSON, data root)."""
    root, cases = synthetic_data

    def make(mode="full", **optim):
        path = tmp_path / f"tiny-{mode.strip('+')}.json"
        path.write_text(json.dumps(tiny_config(cases, mode, **optim)))
        return str(path), root
    return make
