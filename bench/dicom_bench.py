"""Reading DICOM against reading NIfTI: wall time of `segment` on a 512 x 512 x 300 CT given as a DICOM series and as
the NIfTI of the same grid; prints a markdown section for docs/PERFORMANCE.md. Target: the series adds no more than
20 % to the NIfTI path's wall time.

The volume is LiTS-117 (docs/DATA.md, `make data`) resized to 512 x 512 x 300 (scipy zoom, linear), int16 HU, written
in a temporary folder deleted afterwards as: 300 CT Image Storage files (explicit VR little endian, uncompressed,
PixelRepresentation 1, RescaleIntercept 0, the realistic tags of trainer/fixtures/gen_dicom.py), the same series
through dcmcjpls (JPEG-LS lossless, what many PACS store), and a NIfTI-1 of the same int16 array and grid (.nii.gz as dcm2niix
writes by default, and .nii). Each input is run REPEATS times, interleaved (A B C D A B C D ...) so that load on the
shared machine falls on all alike; the table gives median and minimum wall time, and the ratio of medians to the
.nii.gz path. The masks of all inputs are checked equal first (the grid is stored in the same voxel order, so even
the shipped model, which takes arrays as stored, must give the same mask).

    PYTHONPATH=trainer python bench/dicom_bench.py --segment .build/release/segment [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "trainer", "fixtures"))

SHAPE = (512, 512, 300)     # columns, rows, slices
TARGET = 1.20


def volume(cache: str) -> tuple[np.ndarray, np.ndarray]:
    """(vol (512, 512, 300) int16 HU, RAS affine) from LiTS-117, its field of view kept (voxels 0.25 x 0.25 x 0.427
    mm of a nominal 128 mm cube)."""
    from scipy import ndimage
    import segment_data
    image, _, affine = segment_data.load_lits117(cache)
    factors = [n / s for n, s in zip(SHAPE, image.shape)]
    vol = np.round(ndimage.zoom(image, factors, order=1)).astype(np.int16)
    scaled = affine.copy()
    scaled[:3, :3] = affine[:3, :3] / np.asarray(factors)
    return vol, scaled


def write_inputs(folder: str, vol: np.ndarray, affine: np.ndarray) -> dict[str, str]:
    import gen_dicom
    # gen_dicom stores eighths of HU (LiTS-117's steps); whole HU here, signed with intercept 0, as many scanners
    # write them: stored = HU.
    gen_dicom.SLOPE = 1.0
    dss = gen_dicom.ct_series(vol.astype(np.float32), affine, "bench", perm=(0, 1, 2), flips=(False, False, False),
                              signed=True)
    series = os.path.join(folder, "series")
    gen_dicom.save(dss, series)
    jls = os.path.join(folder, "series-jpegls")
    gen_dicom.transcode(series, jls, "dcmcjpls")
    img = nib.Nifti1Image(vol, affine)
    img.header.set_xyzt_units("mm")
    nii_gz, nii = os.path.join(folder, "ct.nii.gz"), os.path.join(folder, "ct.nii")
    nib.save(img, nii_gz)
    nib.save(img, nii)
    return {"NIfTI .nii.gz": nii_gz, "NIfTI .nii": nii, "DICOM series (300 files)": series,
            "DICOM series, JPEG-LS lossless": jls}


def run(segment: str, src: str, out: str, threads: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU is user + system time of segment and its children, which other jobs on a
    shared machine disturb far less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run([segment, src, "-o", out, "--overwrite", "--threads", str(threads), "--quiet"],
                       capture_output=True, text=True)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"segment {src}: exit {r.returncode}\n{r.stderr}")
    return dt, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segment", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=os.environ.get("SEGMENT_DATA") or os.path.expanduser("~/.cache/segment-data"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dicom-bench-") as d:
        t0 = time.perf_counter()
        vol, affine = volume(a.cache)
        inputs = write_inputs(d, vol, affine)
        made = time.perf_counter() - t0
        masks = {}
        for name, src in inputs.items():                 # warm-up run, and the masks compared
            out = os.path.join(d, f"mask-{len(masks)}.nii.gz")
            run(a.segment, src, out, a.threads)
            img = nib.as_closest_canonical(nib.load(out))
            masks[name] = (img.affine, np.asarray(img.dataobj))
        ref_aff, ref = masks["NIfTI .nii.gz"]
        for name, (aff, m) in masks.items():
            # 1e-4 mm: positions are written with 6 decimals, the NIfTI affine in float32.
            if np.abs(aff - ref_aff).max() > 1e-4 or not np.array_equal(m, ref):
                bad = np.count_nonzero(m != ref) if m.shape == ref.shape else "all"
                raise SystemExit(f"{name}: its mask differs from the NIfTI path's ({bad} voxels)")
        times = {name: [] for name in inputs}
        cpu_times = {name: [] for name in inputs}
        for _ in range(a.repeats):
            for name, src in inputs.items():
                wall, cpu_s = run(a.segment, src, os.path.join(d, "mask.nii.gz"), a.threads)
                times[name].append(wall)
                cpu_times[name].append(cpu_s)
    base = statistics.median(times["NIfTI .nii.gz"])
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print("## Reading DICOM vs NIfTI")
    print()
    print(f"`segment INPUT -o mask.nii.gz --threads {a.threads}` with the shipped default model on LiTS-117 resized to "
          f"512 x 512 x 300 (int16 HU), the same grid given as NIfTI and as a CT series; {a.repeats} runs each, "
          f"interleaved, after one warm-up run whose masks were checked equal voxel for voxel; {cpu}, "
          f"{os.cpu_count()} cores shared with other jobs. Made by `make bench` (bench/dicom_bench.py; inputs "
          f"written in {made:.0f} s, not counted).")
    print()
    raw = statistics.median(times["NIfTI .nii"])
    raw_min = min(times["NIfTI .nii"])
    raw_cpu = statistics.median(cpu_times["NIfTI .nii"])
    print("| input | wall median | wall min | CPU median | wall median / .nii.gz | wall median / .nii | "
          "wall min / .nii | CPU / .nii |")
    print("|---|---|---|---|---|---|---|---|")
    for name, ts in times.items():
        med, cm = statistics.median(ts), statistics.median(cpu_times[name])
        print(f"| {name} | {med:.2f} s | {min(ts):.2f} s | {cm:.2f} s | {med / base:.3f} | {med / raw:.3f} | "
              f"{min(ts) / raw_min:.3f} | {cm / raw_cpu:.3f} |")
    series = statistics.median(times["DICOM series (300 files)"])
    series_min = min(times["DICOM series (300 files)"])
    series_cpu = statistics.median(cpu_times["DICOM series (300 files)"])
    print()
    for what, ratio in (("wall median against the .nii.gz path (gzip, as dcm2niix -z y writes)", series / base),
                        ("wall median against the .nii path (uncompressed)", series / raw),
                        ("wall minimum against the .nii path", series_min / raw_min),
                        ("CPU time against the .nii path", series_cpu / raw_cpu)):
        verdict = "within" if ratio <= TARGET else "above"
        print(f"- Uncompressed series, {what}: {100 * (ratio - 1):+.1f} %, {verdict} the target of at most "
              f"+{100 * (TARGET - 1):.0f} %.")


if __name__ == "__main__":
    main()
