"""Scores a model file on the held-out LiTS-117 test block with the released tool (`segment` + `segment score`).

    python -m segment_train.heldout --cache ~/.cache/segment-data --segment .build/release/segment \
        --model models/swin-unet-lits-advmim.segm --out out/heldout/NAME

Cuts the test block (segment_data.lits117_split().test, axial slices k) out of the image and label volumes into
NIfTI files of their own (nibabel's slicer keeps the affine consistent), segments the image block with the model,
and scores the prediction against the label block. Prints the score summary (JSON) on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import nibabel as nib

from segment_data import lits117_split


def cut_test_block(cache: str, out: str) -> tuple[str, str]:
    split = lits117_split()
    k0, k1 = split.test[0], split.test[-1] + 1
    assert list(split.test) == list(range(k0, k1)), "the test block is contiguous"
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in ("image", "label"):
        img = nib.load(os.path.join(cache, "lits117", f"{name}.nii.gz"))
        block = img.slicer[:, :, k0:k1]
        p = os.path.join(out, f"test-{name}.nii.gz")
        nib.save(block, p)
        paths.append(p)
    return paths[0], paths[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m segment_train.heldout", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--segment", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    image, label = cut_test_block(os.path.expanduser(a.cache), a.out)
    pred = os.path.join(a.out, "test-pred.nii.gz")
    summary = os.path.join(a.out, "score.json")
    subprocess.run([a.segment, image, "-o", pred, "--model", a.model, "--overwrite", "--quiet"], check=True)
    subprocess.run([a.segment, "score", "--pred", pred, "--ref", label, "--model", a.model,
                    "--json", summary, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    with open(summary) as f:
        print(json.dumps(json.load(f), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
