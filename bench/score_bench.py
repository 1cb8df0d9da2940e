"""Benchmark of `segment score` against medpy 0.5.2; prints a markdown section for docs/PERFORMANCE.md.

One 512x512x200 prediction/reference pair with 3 labels (synthetic organ-like blobs: a large, a medium and a small
one, the prediction shifted and reshaped), spacing 0.7 x 0.7 x 1.5 mm, stored as .nii.gz:
- `segment score --threads 1` end to end (reading both .nii.gz files, all metrics: Dice, IoU, HD, HD95, ASSD);
- medpy `dc` + `hd95` per label with voxelspacing on the arrays already in memory (reading not timed), 1 thread;
- the values must agree (Dice 1e-6 relative, HD95 1e-4 mm);
- scaling in the number of cases: folders of 1, 2 and 4 such cases, --threads 1;
- normalized surface Dice: `segment score --nsd 1,2` against the same run without it (the target: at most 50 % more
  time), and DeepMind's surface-distance 0.1 (`compute_surface_distances` + `compute_surface_dice_at_tolerance` at 1
  and 2 mm per label) on the arrays in memory, 1 thread; the values must agree within 1e-6.

Usage: PYTHONPATH=trainer python bench/score_bench.py --segment .build/release/segment [--shape 512,512,200]
The volumes live in a temporary folder, deleted at the end.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import nibabel as nib
import numpy as np
from medpy.metric import binary as medpy_binary
# surface-distance 0.1 writes np.Inf (removed in numpy 2) for a mask without border: the same value under its old name
if not hasattr(np, "Inf"):
    np.Inf = np.inf
import surface_distance  # noqa: E402
from threadpoolctl import threadpool_limits

SPACING = (0.7, 0.7, 1.5)


def organ(shape, centre, radii, rng, wobble):
    """A smooth blob: an ellipsoid whose radius varies with a low-frequency random field, as a boolean mask."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii))
    phase = rng.uniform(0, 2 * np.pi, 3)
    bumps = wobble * (np.sin(grids[0] * 0.05 + phase[0]) * np.cos(grids[1] * 0.04 + phase[1])
                      + np.sin(grids[2] * 0.07 + phase[2]))
    return r2 <= 1 + bumps


def make_pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    s = np.array(shape, float)
    organs = [  # (label, centre as a fraction of the shape, radii as a fraction of the shape)
        (1, (0.40, 0.48, 0.50), (0.23, 0.18, 0.30)),   # liver-like
        (2, (0.72, 0.50, 0.45), (0.06, 0.07, 0.20)),   # kidney-like
        (3, (0.58, 0.30, 0.60), (0.08, 0.05, 0.25)),   # spleen-like
    ]
    ref = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for label, c, r in organs:
        centre, radii = s * np.array(c), s * np.array(r)
        ref[organ(shape, centre, radii, rng, 0.10)] = label
        moved = centre + rng.normal(0, 1.5, 3)
        pred[organ(shape, moved, radii * rng.uniform(0.95, 1.05, 3), rng, 0.12)] = label
    return pred, ref


def save(array, path):
    affine = np.diag(list(SPACING) + [1.0])
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    nib.save(img, path)


def run_segment(segment, args):
    """(wall s, CPU s = user + system, peak RSS MB) of one `segment score --threads 1` run, from /usr/bin/time."""
    r = subprocess.run(["/usr/bin/time", "-f", "TIME %e %U %S %M", segment, "score", "--threads", "1", "-q"] + args,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, user, system, rss_kb = r.stderr.strip().splitlines()[-1].split()[1:]
    return float(wall), float(user) + float(system), float(rss_kb) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segment", default=".build/release/segment")
    ap.add_argument("--shape", default="512,512,200")
    a = ap.parse_args()
    shape = tuple(int(v) for v in a.shape.split(","))
    segment = os.path.abspath(a.segment)

    with tempfile.TemporaryDirectory(prefix="score-bench-") as tmp:
        pred, ref = make_pair(shape)
        save(pred, f"{tmp}/pred.nii.gz")
        save(ref, f"{tmp}/ref.nii.gz")

        # one case, end to end
        report = f"{tmp}/one.json"
        seg_wall, seg_cpu, seg_rss = run_segment(segment, ["--pred", f"{tmp}/pred.nii.gz", "--ref", f"{tmp}/ref.nii.gz",
                                                           "--json", report])
        with open(report) as f:
            ours = json.load(f)["metric_per_case"][0]["metrics"]

        # medpy on the arrays in memory, one thread
        answers = {}
        with threadpool_limits(1):
            wall, cpu = time.perf_counter(), time.process_time()
            for label in (1, 2, 3):
                p, r = pred == label, ref == label
                answers[label] = (medpy_binary.dc(p, r), medpy_binary.hd95(p, r, voxelspacing=SPACING))
            medpy_wall, medpy_cpu = time.perf_counter() - wall, time.process_time() - cpu
        for label, (dice, hd95) in answers.items():
            got = ours[str(label)]
            assert abs(got["Dice"] - dice) <= 1e-6 * dice, (label, got["Dice"], dice)
            assert abs(got["HD95"] - hd95) <= 1e-4, (label, got["HD95"], hd95)

        # normalized surface Dice: the same run with --nsd 1,2 (best of 2 each, the machine may be shared), and the
        # surface-distance package on the arrays in memory
        nsd_report = f"{tmp}/nsd.json"
        plain = min((run_segment(segment, ["--pred", f"{tmp}/pred.nii.gz", "--ref", f"{tmp}/ref.nii.gz"])
                     for _ in range(2)), key=lambda r: r[1])
        with_nsd = min((run_segment(segment, ["--pred", f"{tmp}/pred.nii.gz", "--ref", f"{tmp}/ref.nii.gz",
                                              "--nsd", "1,2", "--json", nsd_report]) for _ in range(2)),
                       key=lambda r: r[1])
        with open(nsd_report) as f:
            ours_nsd = json.load(f)["metric_per_case"][0]["metrics"]
        nsd_answers = {}
        with threadpool_limits(1):
            wall, cpu = time.perf_counter(), time.process_time()
            for label in (1, 2, 3):
                d = surface_distance.compute_surface_distances(ref == label, pred == label, list(SPACING))
                nsd_answers[label] = [surface_distance.compute_surface_dice_at_tolerance(d, t) for t in (1, 2)]
            sd_wall, sd_cpu = time.perf_counter() - wall, time.process_time() - cpu
        for label, values in nsd_answers.items():
            for t, want in zip((1, 2), values):
                got = ours_nsd[str(label)][f"nsd_{t}mm"]
                assert abs(got - want) <= 1e-6, (label, t, got, want)

        # scaling in the number of cases (symlinks to the same pair)
        scaling = []
        for n in (1, 2, 4):
            ref_dir, pred_dir = f"{tmp}/ref_{n}", f"{tmp}/pred_{n}"
            os.makedirs(ref_dir), os.makedirs(pred_dir)
            for k in range(n):
                os.symlink(f"{tmp}/ref.nii.gz", f"{ref_dir}/case_{k}.nii.gz")
                os.symlink(f"{tmp}/pred.nii.gz", f"{pred_dir}/case_{k}.nii.gz")
            scaling.append((n, run_segment(segment, ["--pred", pred_dir, "--ref", ref_dir])))

    voxels = np.prod(shape)
    print("## Scoring (`segment score`) vs medpy 0.5.2\n")
    print(f"Synthetic pair {'x'.join(map(str, shape))} ({voxels / 1e6:.1f} M voxels), 3 labels "
          f"({', '.join(f'{int((ref == c).sum())}' for c in (1, 2, 3))} reference voxels), spacing "
          f"{' x '.join(map(str, SPACING))} mm, .nii.gz, 1 thread. CPU time (user + system) is the robust figure on "
          "a shared machine; wall time is what a user waits on an idle one.\n")
    print("| | CPU (s) | wall (s) | what |")
    print("|---|---|---|---|")
    print(f"| `segment score --threads 1` | {seg_cpu:.2f} | {seg_wall:.2f} | reading both .nii.gz + Dice, IoU, HD, HD95, "
          f"ASSD for 3 labels; peak RSS {seg_rss:.0f} MB |")
    print(f"| medpy `dc` + `hd95` | {medpy_cpu:.2f} | {medpy_wall:.2f} | arrays already in memory (reading not timed), 3 labels |")
    print(f"\nSpeed-up (CPU time): **{medpy_cpu / seg_cpu:.0f}x** (wall: {medpy_wall / seg_wall:.0f}x; target >= 10x). "
          "Values agree: Dice within 1e-6 relative, HD95 within 1e-4 mm.\n")
    print("Normalized surface Dice at 1 and 2 mm (`--nsd 1,2`), the same pair, 1 thread (best of 2 runs each):\n")
    print("| | CPU (s) | wall (s) | what |")
    print("|---|---|---|---|")
    print(f"| `segment score --threads 1` | {plain[1]:.2f} | {plain[0]:.2f} | as above, without NSD |")
    print(f"| `segment score --threads 1 --nsd 1,2` | {with_nsd[1]:.2f} | {with_nsd[0]:.2f} | the same with NSD at 1 and 2 mm |")
    print(f"| surface-distance 0.1 | {sd_cpu:.2f} | {sd_wall:.2f} | `compute_surface_distances` + "
          "`compute_surface_dice_at_tolerance` (1, 2 mm) per label, arrays in memory (reading not timed) |")
    print(f"\nNSD adds **{100 * (with_nsd[1] / plain[1] - 1):.0f} %** to `score`'s CPU time "
          f"({100 * (with_nsd[0] / plain[0] - 1):.0f} % wall; target <= 50 %). surface-distance alone takes "
          f"{sd_cpu / with_nsd[1]:.1f}x the CPU time of the whole `segment score --nsd 1,2` run (which also reads the "
          "files and computes every other metric). Values agree within 1e-6.\n")
    print("Scaling in the number of cases (a folder of n copies, `--threads 1`):\n")
    print("| cases | CPU (s) | CPU per case (s) | wall (s) |")
    print("|---|---|---|---|")
    for n, (wall, cpu, _) in scaling:
        print(f"| {n} | {cpu:.2f} | {cpu / n:.2f} | {wall:.2f} |")
    print()

if __name__ == "__main__":
    main()
