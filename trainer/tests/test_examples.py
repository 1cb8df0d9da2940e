"""examples/*.sh run as a user would run them (segment on PATH, the shipped default model found without --model),
on small generated cases, so none of them rots. examples/slurm/ is run on a real scheduler by test_slurm.py."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from example_cases import write_cases

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SEGMENT_BIN") or REPO / ".build" / "release" / "segment").resolve()
EXAMPLES = REPO / "examples"
FIXTURES = Path(os.environ.get("SEGMENT_FIXTURES") or REPO / ".fixtures")


def run(script: str, *args, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = dict(os.environ, PATH=f"{BIN.parent}:{os.environ['PATH']}")
    e.pop("SEGMENT_MODEL", None)
    e.update(env or {})
    return subprocess.run([str(EXAMPLES / script), *map(str, args)], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module", autouse=True)
def binary():
    assert BIN.is_file(), f"no segment executable at {BIN}: run `make build` or set SEGMENT_BIN"


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    d = tmp_path_factory.mktemp("example-cases")
    names = write_cases(str(d / "cases"), str(d / "refs"), 3)
    return d, names


def test_one_scan(cases, tmp_path):
    d, names = cases
    r = run("one-scan.sh", d / "cases" / f"{names[0]}.nii.gz", "out/mask.nii.gz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out" / "mask.json").read_text())
    assert report["exit_code"] == 0 and report["model"]["path"].endswith("models/swin-unet-lits-advmim.segm")
    assert (tmp_path / "out" / "mask.nii.gz").is_file()
    assert "label 1 liver:" in r.stdout and "ml" in r.stdout, r.stdout
    # A second run replaces the mask (the example passes --overwrite).
    assert run("one-scan.sh", d / "cases" / f"{names[0]}.nii.gz", "out/mask.nii.gz", cwd=tmp_path).returncode == 0


def test_folder_and_score(cases, tmp_path):
    d, names = cases
    r = run("folder-and-score.sh", d / "cases", d / "refs", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"{n}.nii.gz" for n in names]
    run_report = json.loads((out / "run.json").read_text())
    assert run_report["summary"]["ok"] == len(names)
    scores = json.loads((out / "scores.json").read_text())
    assert [c["case"] for c in scores["metric_per_case"]] == names
    assert "foreground  mean" in r.stdout, r.stdout      # score's table of per-label means
    assert (out / "scores.csv").read_text().startswith("case,label,")
    # The same command again finishes an interrupted folder: here every mask exists, so nothing is redone.
    (out / "masks" / f"{names[1]}.nii.gz").unlink()
    r = run("folder-and-score.sh", d / "cases", d / "refs", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "run.json").read_text())["summary"]
    assert (s["ok"], s["skipped"]) == (1, len(names) - 1)


def test_hospital_template(cases, tmp_path):
    d, names = cases
    incoming = tmp_path / "incoming"
    write_cases(str(incoming), None, 3, seed=5)
    r = run("hospital.sh", incoming, "masks", "report.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "3 scans, 3 segmented now, 0 done before" in r.stdout, r.stdout
    r = run("hospital.sh", incoming, "masks", "report.json", cwd=tmp_path)
    assert r.returncode == 0 and "3 scans, 0 segmented now, 3 done before" in r.stdout, (r.stdout, r.stderr)

    # A damaged scan fails alone: the template retries it once with --continue, then exits 6 naming the report.
    (incoming / "broken.nii.gz").write_bytes((incoming / f"{names[0]}.nii.gz").read_bytes()[:200])
    r = run("hospital.sh", incoming, "masks", "report.json", cwd=tmp_path)
    assert r.returncode == 6, (r.stdout, r.stderr)
    assert "retrying them once" in r.stderr and "still failing" in r.stderr, r.stderr
    assert r.stderr.count("case=broken status=failed") == 2, r.stderr      # the first run and the retry
    report = json.loads((tmp_path / "report.json").read_text())
    assert [c["name"] for c in report["cases"] if c["status"] == "failed"] == ["broken"]
    (incoming / "broken.nii.gz").unlink()

    # Each other exit code gets its own message and is passed on.
    r = run("hospital.sh", tmp_path / "nowhere", "masks", "report.json", cwd=tmp_path)
    assert r.returncode == 3 and "invalid input" in r.stderr, r.stderr
    r = run("hospital.sh", incoming, "masks", "report.json", cwd=tmp_path, env={"SEGMENT_MODEL": str(tmp_path / "none.segm")})
    assert r.returncode == 4 and "model file" in r.stderr, r.stderr
    r = run("hospital.sh", incoming, "masks", "report.json", "--threads", "0", cwd=tmp_path)
    assert r.returncode == 2 and "usage error" in r.stderr, r.stderr
    # A deleted mask is made again by the next run, which the report shows.
    (tmp_path / "masks" / f"{names[0]}.nii.gz").unlink()
    r = run("hospital.sh", incoming, "masks", "report.json", cwd=tmp_path)
    assert r.returncode == 0 and "3 scans, 1 segmented now, 2 done before" in r.stdout, (r.stdout, r.stderr)


def test_convert_checkpoint(cases, tmp_path):
    checkpoint = FIXTURES / "convert" / "small" / "advmim.pth"
    if not checkpoint.is_file():
        pytest.fail(f"{checkpoint} is missing: run `make fixtures`")
    r = run("convert-checkpoint.sh", checkpoint, "models/small.segm", "--classes", "background,a,b,c", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "checksum" in r.stdout and "(verified)" in r.stdout and "background, 1 a" in r.stdout.replace(":", ""), r.stdout
    assert "patch_embed.proj.weight" not in r.stdout       # the tensor table is left out
    # The converted model segments a scan through the one-scan example.
    d, names = cases
    r = run("one-scan.sh", d / "cases" / f"{names[0]}.nii.gz", "mask.nii.gz", "--model", "models/small.segm",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "mask.json").read_text())["model"]["class_names"] == ["background", "a", "b", "c"]
    # convert refuses to replace a model unless told.
    r = run("convert-checkpoint.sh", checkpoint, "models/small.segm", cwd=tmp_path)
    assert r.returncode == 5, (r.returncode, r.stderr)
