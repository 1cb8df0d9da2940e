"""segment_data: the real data of docs/DATA.md, fetched from PyPI and Debian into a cache folder and converted
(`python -m segment_data.fetch --cache DIR`, run by `make data`), and the small API the trainer reads it with."""

import os

import numpy as np
import nibabel as nib

from . import manifest
from .errors import DataError
from .split import SliceSplit, lits117_split

__all__ = ["DataError", "SliceSplit", "lits117_split", "load_lits117"]

LITS117_FILES = ("lits117/image.nii.gz", "lits117/label.nii.gz")


def load_lits117(cache: str) -> tuple:
    """(image, label, affine) of LiTS-117 from the cache, after checking both files against its manifest:
    image (128, 128, 128) float32 HU, label (128, 128, 128) uint8 (0 background, 1 liver, 2 tumour), the third
    axis axial (k -> superior), affine the 4x4 RAS+ sform (i -> left, j -> posterior, nominal 1 mm voxels)."""
    cache = os.path.abspath(os.path.expanduser(cache))
    bad = manifest.problems(cache, LITS117_FILES)
    if bad:
        raise DataError("LiTS-117 is not in the cache as made by `make data`:\n  " + "\n  ".join(bad)
                        + f"\nRun `make data` (or python -m segment_data.fetch --cache {cache}).")
    image = nib.load(os.path.join(cache, LITS117_FILES[0]))
    label = nib.load(os.path.join(cache, LITS117_FILES[1]))
    return (np.asarray(image.dataobj, dtype=np.float32), np.asarray(label.dataobj, dtype=np.uint8),
            image.get_sform())
