"""`segment run --precision bf16` against fp32 on the shipped model and LiTS volume 117 (the real CT the model was
held out on): the masks agree on >= 99.9 % of voxels and the liver and tumour Dice against the LiTS reference differ
by <= 0.002; the run report records the precision and the kernels. Dice is computed here with numpy, independently
of `segment score`. Needs the data cache (`make data`; $SEGMENT_DATA, default ~/.cache/segment-data) and a CPU
with bf16 kernels (AVX512-BF16 or AMX-BF16); skipped otherwise, saying which."""
import json
import os
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SEGMENT_BIN") or REPO / ".build" / "release" / "segment").resolve()
CACHE = Path(os.environ.get("SEGMENT_DATA") or Path.home() / ".cache" / "segment-data")
IMAGE, LABEL = CACHE / "lits117" / "image.nii.gz", CACHE / "lits117" / "label.nii.gz"
MODEL = REPO / "models" / "swin-unet-lits-advmim.segm"

# Fidelity bars of the bf16 path on this volume (measured: 99.97 % of voxels; Dice differences 2e-5 liver, 6e-5
# tumour).
VOXEL_AGREEMENT = 0.999
DICE_DIFFERENCE = 0.002


def run(precision: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "run", str(IMAGE), "-o", str(out / f"mask-{precision}.nii.gz"), "--model", str(MODEL),
                           "--precision", precision, "--threads", "2", "--batch", "16", "--quiet",
                           "--report", str(out / f"report-{precision}.json")], capture_output=True, text=True, timeout=600)


def dice(p: np.ndarray, r: np.ndarray) -> float:
    return 2.0 * np.logical_and(p, r).sum() / (p.sum() + r.sum())


@pytest.mark.skipif(not IMAGE.exists() or not LABEL.exists(), reason=f"LiTS-117 is not in {CACHE}: run `make data`")
def test_bf16_masks_agree_with_fp32_on_lits117(tmp_path):
    assert BIN.is_file(), f"no segment executable at {BIN}: run `make build` or set SEGMENT_BIN"
    bf = run("bf16", tmp_path)
    if bf.returncode == 2 and "AVX512-BF16" in bf.stderr:
        pytest.skip("this CPU has no bf16 kernels: " + bf.stderr.strip())
    assert bf.returncode == 0, bf.stderr
    fp = run("fp32", tmp_path)
    assert fp.returncode == 0, fp.stderr

    reports = {p: json.loads((tmp_path / f"report-{p}.json").read_text()) for p in ("fp32", "bf16")}
    assert reports["fp32"]["options"]["precision"] == "fp32"
    assert reports["bf16"]["options"]["precision"] == "bf16"
    assert reports["bf16"]["options"]["kernels"] in ("avx512-bf16", "amx-bf16")

    masks = {p: np.asarray(nib.load(str(tmp_path / f"mask-{p}.nii.gz")).dataobj) for p in ("fp32", "bf16")}
    label = np.asarray(nib.load(str(LABEL)).dataobj)
    assert masks["fp32"].shape == masks["bf16"].shape == label.shape
    agreement = float((masks["fp32"] == masks["bf16"]).mean())
    assert agreement >= VOXEL_AGREEMENT, f"bf16 and fp32 masks agree on {agreement:.5%} of voxels"
    for name, sel in (("liver", lambda m: m >= 1), ("tumour", lambda m: m == 2)):
        d32, d16 = dice(sel(masks["fp32"]), sel(label)), dice(sel(masks["bf16"]), sel(label))
        assert abs(d32 - d16) <= DICE_DIFFERENCE, f"{name} Dice fp32 {d32:.5f} vs bf16 {d16:.5f}"
    print(f"LiTS-117 bf16 vs fp32: {agreement:.5%} of voxels agree")


def test_bf16_request_is_recorded_or_refused_clearly(tmp_path):
    """auto resolves to what the CPU runs and the report says which; bf16 either runs or exits 2 naming the
    missing CPU features (never a crash), before touching any output."""
    assert BIN.is_file(), f"no segment executable at {BIN}: run `make build` or set SEGMENT_BIN"
    src = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).normal(size=(40, 36, 3)).astype(np.float32), np.eye(4)), str(src))
    for precision in ("auto", "bf16"):
        out = tmp_path / f"out-{precision}.nii.gz"
        r = subprocess.run([str(BIN), "run", str(src), "-o", str(out), "--model", str(MODEL), "--precision", precision,
                            "--threads", "1", "--quiet", "--report", str(tmp_path / f"r-{precision}.json")],
                           capture_output=True, text=True, timeout=300)
        if r.returncode == 2:
            assert precision == "bf16" and "AVX512-BF16" in r.stderr and not out.exists(), r.stderr
            continue
        assert r.returncode == 0, r.stderr
        options = json.loads((tmp_path / f"r-{precision}.json").read_text())["options"]
        assert options["precision"] in ("fp32", "bf16")
        assert options["kernels"] in (("avx512-bf16", "amx-bf16") if options["precision"] == "bf16"
                                      else ("avx512", "avx2", "portable-c"))
    r = subprocess.run([str(BIN), "run", str(src), "-o", str(tmp_path / "x.nii.gz"), "--precision", "fp16"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "fp16" in r.stderr and "bf16" in r.stderr, r.stderr
