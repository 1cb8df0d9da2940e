"""What crash isolation costs: `segment run` on a folder of 100 small CT volumes with its worker process (the default)
and with --in-process, alternating, 3 rounds each; prints a markdown section for docs/PERFORMANCE.md.

The cases are 100 copies of a 256 x 256 x 16 int16 phantom, so the run's fixed costs (the worker's start, its own
opening of the model, one message pair per case) weigh as much as they can; the shipped model segments them.

    PYTHONPATH=trainer python bench/isolation.py --segment .build/release/segment [--cases 100] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import nibabel as nib
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segment", required=True)
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cases = os.path.join(tmp, "cases")
        os.makedirs(cases)
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[0:256, 0:256]
        body = ((xx - 128) / 110.0) ** 2 + ((yy - 128) / 85.0) ** 2 < 1
        vol = np.where(body, 40, -1000)[:, :, None] + rng.normal(0, 8, (256, 256, 16))
        first = os.path.join(cases, "case000.nii.gz")
        nib.save(nib.Nifti1Image(vol.astype(np.int16), np.diag([0.8, 0.8, 2.5, 1])), first)
        for i in range(1, args.cases):
            shutil.copy(first, os.path.join(cases, f"case{i:03d}.nii.gz"))
        times: dict[str, list[float]] = {"worker process": [], "--in-process": []}
        for r in range(args.rounds):
            for mode in (["worker process", "--in-process"] if r % 2 == 0 else ["--in-process", "worker process"]):
                out = os.path.join(tmp, "masks")
                shutil.rmtree(out, ignore_errors=True)
                cmd = [args.segment, cases, "-o", out, "--threads", str(args.threads), "--quiet"]
                if mode == "--in-process":
                    cmd.append("--in-process")
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True)
                times[mode].append(time.perf_counter() - t0)
    w, p = statistics.median(times["worker process"]), statistics.median(times["--in-process"])
    print("## Crash isolation\n")
    print(f"`segment run` on {args.cases} volumes of 256 x 256 x 16 (shipped model, {args.threads} threads), "
          f"median of {args.rounds} alternating runs (`bench/isolation.py`):\n")
    print("| cases run in | wall time (s) | per case (ms) |")
    print("|---|---|---|")
    for mode, t in (("a worker process (default)", w), ("this process (`--in-process`)", p)):
        print(f"| {mode} | {t:.2f} | {1000 * t / args.cases:.1f} |")
    spread = max((max(t) - min(t)) / statistics.median(t) for t in times.values())
    print(f"\nWorker minus in-process: {1000 * (w - p) / args.cases:+.1f} ms a case ({100 * (w - p) / p:+.1f} %); the runs of "
          f"one mode spread by up to {100 * spread:.0f} % here. What isolation adds is fixed: the worker's start and its "
          "own opening of the model, once, and one message pair per case.")

if __name__ == "__main__":
    main()
