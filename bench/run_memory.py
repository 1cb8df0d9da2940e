"""Peak memory of `segment run` on a big CT: prints a markdown section for docs/PERFORMANCE.md.

Makes, in a temporary folder deleted afterwards, a 512 x 512 x 800 int16 volume (a body-like phantom with organs, not
noise) and, unless --model is given, a full-size Swin-T model file (224, embed 96, depths 2,2,2,2, heads 3,6,12,24,
3 classes, random weights) through the real path: a segment_torch checkpoint converted by `segment convert`.
Then runs the release binary under /usr/bin/time and reports its peak resident set size (VmHWM), against the target
of 1.5 GB, with what the run holds by design: the volume as stored, the uint8 mask, the model's weights.

    PYTHONPATH=trainer python bench/run_memory.py --segment .build/release/segment [--slices 800] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

TARGET_BYTES = 1.5e9


def phantom_ct(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """int16 HU-like volume: air -1000, an elliptic body (fat/soft tissue around 40), a liver-like organ (60),
    a spine-like column (700), and mild noise. Built slice by slice to keep the generator's memory small."""
    X, Y, Z = shape
    rng = np.random.default_rng(seed)
    xx, yy = np.mgrid[0:X, 0:Y].astype(np.float32)
    cx, cy = X / 2, Y / 2
    vol = np.empty(shape, np.int16)
    for k in range(Z):
        s = np.full((X, Y), -1000, np.float32)
        body = ((xx - cx) / (0.42 * X)) ** 2 + ((yy - cy) / (0.32 * Y)) ** 2 < 1
        s[body] = 40
        liver = ((xx - cx + 0.12 * X) / (0.16 * X)) ** 2 + ((yy - cy - 0.08 * Y) / (0.12 * Y)) ** 2 < 1 + 0.2 * np.sin(k / 50)
        s[liver & body] = 60
        spine = ((xx - cx) / (0.04 * X)) ** 2 + ((yy - cy + 0.22 * Y) / (0.04 * Y)) ** 2 < 1
        s[spine] = 700
        s += rng.normal(0, 8, size=(X, Y)).astype(np.float32) * body
        vol[:, :, k] = np.round(s).astype(np.int16)
    return vol


def make_model(segment: str, folder: str) -> str:
    """A full-size Swin-T model file, through the converter (as users make theirs)."""
    import torch
    from segment_torch import SwinUNet, SwinUNetConfig, save_checkpoint
    torch.manual_seed(0)
    model = SwinUNet(SwinUNetConfig(num_classes=3))
    ckpt = os.path.join(folder, "iter_0.pth")
    save_checkpoint(model.state_dict(), ckpt, "zip")
    out = os.path.join(folder, "swin-t.segm")
    subprocess.run([segment, "convert", ckpt, "-o", out, "--img-size", "224", "--classes", "background,liver,tumour",
                    "--intensity", "window", "--window-range", "-160,240", "--quiet"], check=True)
    os.remove(ckpt)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segment", default=".build/release/segment")
    ap.add_argument("--model", help="a model file (default: a random full-size Swin-T made with segment convert)")
    ap.add_argument("--slices", type=int, default=800, help="Z of the 512 x 512 x Z volume (default 800)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    segment = os.path.abspath(args.segment)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("interrupted"))   # still removes the temporary folder

    with tempfile.TemporaryDirectory(prefix="segment-run-memory-") as tmp:
        model = args.model or make_model(segment, tmp)
        shape = (512, 512, args.slices)
        image = os.path.join(tmp, "ct.nii.gz")
        t0 = time.time()
        nib.save(nib.Nifti1Image(phantom_ct(shape), np.diag([0.7, 0.7, 1.0, 1.0])), image)
        made = time.time() - t0
        mask = os.path.join(tmp, "mask.nii.gz")
        cmd = ["/usr/bin/time", "-f", "%M %e", segment, image, "-o", mask, "--model", model,
               "--threads", str(args.threads), "--batch", str(args.batch), "--quiet"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"segment failed ({r.returncode}): {r.stderr}")
        peak_kb, wall = r.stderr.strip().splitlines()[-1].split()
        peak = int(peak_kb) * 1024
        voxels = int(np.prod(shape))
        model_size = os.path.getsize(model)

    mb = lambda b: f"{b / 1e6:,.0f} MB"
    verdict = "meets" if peak < TARGET_BYTES else "MISSES"
    print("## Run pipeline: peak memory\n")
    print(f"`segment {'x'.join(map(str, shape))}.nii.gz -o mask.nii.gz` (int16 CT, gzip), full Swin-T model "
          f"(224, embed 96, 3 classes, {mb(model_size)}), --threads {args.threads} --batch {args.batch}, measured with "
          f"/usr/bin/time (maximum resident set size).\n")
    print("| what | size |")
    print("|---|---|")
    print(f"| peak RSS of the run | **{mb(peak)}** ({verdict} the 1.5 GB target) |")
    print(f"| volume as stored (int16) | {mb(2 * voxels)} |")
    print(f"| mask (uint8, input grid) | {mb(voxels)} |")
    print(f"| model file (its weights are copied into the engine as f32; the mapping is released after loading) | {mb(model_size)} |")
    print(f"| wall time | {float(wall):.0f} s ({args.slices} slices; volume generation {made:.0f} s not counted) |")
    print()
    print("The run streams slices: one batch of float slices at the model size, never a float copy of the volume. "
          "Peak = stored volume + mask + weights + engine buffers for one batch + the writer's buffers. "
          "`--probabilities` adds 4 bytes per voxel and class (8 while writing).")


if __name__ == "__main__":
    main()
