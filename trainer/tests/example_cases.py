"""Small NIfTI cases and their reference masks for the examples' tests (test_examples.py, test_slurm.py,
test_install.py): CT-like int16 volumes (a bright body holding a brighter blob that drifts with the slice, in
Hounsfield-like units the shipped liver model's window sees) and uint8 labels 0/1/2 named alike in two folders."""
import os

import numpy as np


def write_cases(cases_dir: str, refs_dir: str | None, count: int, shape=(48, 40, 16), seed: int = 0) -> list[str]:
    import nibabel as nib
    os.makedirs(cases_dir, exist_ok=True)
    if refs_dir:
        os.makedirs(refs_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    R, C, S = shape
    rr, cc = np.mgrid[0:R, 0:C]
    names = []
    for i in range(count):
        img = rng.normal(-100.0, 20.0, shape)
        lab = np.zeros(shape, dtype=np.uint8)
        for s in range(S):
            cy, cx = R / 2 + R / 8 * np.sin(s / 7 + i), C / 2 + C / 8 * np.cos(s / 9 + i)
            d2 = (rr - cy) ** 2 + (cc - cx) ** 2
            lab[..., s][d2 < (min(R, C) / 3) ** 2] = 1
            lab[..., s][d2 < (min(R, C) / 8) ** 2] = 2
        img += np.where(lab == 1, 160.0, 0.0) + np.where(lab == 2, 60.0, 0.0)
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        name = f"case{i:02d}"
        nib.save(nib.Nifti1Image(img.astype(np.int16), affine), os.path.join(cases_dir, f"{name}.nii.gz"))
        if refs_dir:
            nib.save(nib.Nifti1Image(lab, affine), os.path.join(refs_dir, f"{name}.nii.gz"))
        names.append(name)
    return names
