"""examples/slurm/ on a real scheduler: a one-node Slurm (slurm_one_node.py) runs submit.sh's array of 3 shard tasks
and its dependent merge job on 6 cases, then a run whose task is cancelled mid-case is resumed by resubmitting.

Job states and exit codes are read from `scontrol show job` (accounting is off on a one-node test cluster, so sacct
has no records). Root only: it installs Debian's Slurm and munge packages when missing and starts the daemons,
which it stops by PID at the end. About a minute (56 s with the packages' installation from apt's cache; a new
machine adds their download)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from example_cases import write_cases

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SEGMENT_BIN") or REPO / ".build" / "release" / "segment").resolve()
SUBMIT = REPO / "examples" / "slurm" / "submit.sh"
CASES = 6
TASKS = 3
# 400 slices of 64 x 64: a few seconds per case with the shipped model on one CPU, so a task (2 cases) can be caught
# between its first and its second case.
SHAPE = (64, 64, 400)
TIMEOUT = 300
DONE = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
        "DEADLINE"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="test_slurm needs root: it installs Debian's slurmctld, "
                                "slurmd, slurm-client and munge and starts their daemons")


@pytest.fixture(scope="module")
def cluster():
    from slurm_one_node import OneNodeSlurm, install_packages
    assert BIN.is_file(), f"no segment executable at {BIN}: run `make build` or set SEGMENT_BIN"
    install_packages()
    folder = tempfile.mkdtemp(prefix="segment-slurm-")
    c = OneNodeSlurm(folder)
    try:
        c.start()
        # Jobs inherit the submitting environment (sbatch --export=ALL): segment is found on PATH.
        c.env["PATH"] = f"{BIN.parent}:{c.env['PATH']}"
        yield c
    finally:
        c.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def data(cluster):
    folder = Path(cluster.dir) / "data"
    names = write_cases(str(folder / "cases"), str(folder / "refs"), CASES, SHAPE, seed=3)
    return folder, names


def submit(cluster, data_dir: Path, masks: Path, work: Path, refs: bool = True) -> tuple[str, str]:
    args = [str(SUBMIT), "-n", str(TASKS), "-c", "1", str(data_dir / "cases"), str(masks), str(work)]
    if refs:
        args.append(str(data_dir / "refs"))
    r = cluster.run(*args, timeout=60)
    assert r.returncode == 0, r.stderr
    ids = dict(line.split() for line in r.stdout.splitlines())
    return ids["array"], ids["merge"]


def jobs(cluster, job: str) -> list[dict]:
    """`scontrol -o show job JOB` as one dict per record (an array gives one per task once they are split)."""
    r = cluster.run("scontrol", "-o", "show", "job", job, timeout=30)
    assert r.returncode == 0, r.stderr
    return [dict(re.findall(r"(\S+?)=(\S*)", line)) for line in r.stdout.splitlines() if line.strip()]


def array_states(cluster, job: str) -> dict[int, dict]:
    """Task id -> its record; tasks still pending together (ArrayTaskId=1-2) are left out."""
    return {int(j["ArrayTaskId"]): j for j in jobs(cluster, job) if j.get("ArrayTaskId", "").isdigit()}


def wait_for(what: str, ok, timeout: float = TIMEOUT, every: float = 0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = ok()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def array_finished(cluster, job: str) -> dict[int, dict] | None:
    s = array_states(cluster, job)
    return s if len(s) == TASKS and all(j["JobState"] in DONE for j in s.values()) else None


def ok_lines(log: Path) -> list[str]:
    """The cases a log says were segmented (status=ok; --continue's skips say status=skipped)."""
    return re.findall(r"^segment: case=(\S+) status=ok ", log.read_text(), re.M) if log.exists() else []


def logs_of(work: Path, job: str) -> list[Path]:
    return [work / "logs" / f"segment-{job}_{t}.log" for t in range(TASKS)]


def test_array_then_merge(cluster, data, tmp_path):
    data_dir, names = data
    work, masks = Path(cluster.dir) / "run1", Path(cluster.dir) / "run1" / "masks"
    array, merge = submit(cluster, data_dir, masks, work)
    states = wait_for("the array to finish", lambda: array_finished(cluster, array))
    merged = wait_for("the merge job to finish", lambda: [j for j in jobs(cluster, merge) if j["JobState"] in DONE])
    logs = logs_of(work, array)
    for t, j in states.items():
        assert (j["JobState"], j["ExitCode"]) == ("COMPLETED", "0:0"), (t, j, logs[t].read_text())
    assert (merged[0]["JobState"], merged[0]["ExitCode"]) == ("COMPLETED", "0:0"), \
        (work / "logs" / f"segment-merge-{merge}.log").read_text()

    # Each task did its shard (cases t, t + 3), once, with the CPUs Slurm gave it as threads.
    done = [c for log in logs for c in ok_lines(log)]
    assert sorted(done) == names, done
    for t in range(TASKS):
        assert sorted(ok_lines(logs[t])) == names[t::TASKS]
        r = json.loads((work / f"reports-{array}" / f"shard-{t}.json").read_text())
        assert r["summary"]["shard"] == f"{t}/{TASKS}" and r["options"]["threads"] == 1
    assert sorted(p.name for p in masks.iterdir()) == [f"{n}.nii.gz" for n in names]

    run = json.loads((work / f"run-{array}.json").read_text())
    assert run["exit_code"] == 0
    assert [c["name"] for c in run["cases"]] == names and all(c["status"] == "ok" for c in run["cases"])
    assert run["summary"] == {"discovered": CASES, "cases": CASES, "ok": CASES, "skipped": 0, "failed": 0}
    scores = json.loads((work / f"run-{array}-scores.json").read_text())
    assert len(scores["metric_per_case"]) == CASES, scores.keys()
    assert (work / f"run-{array}-scores.csv").read_text().count("\n") > CASES


def test_cancel_then_resubmit(cluster, data):
    data_dir, names = data
    work, masks = Path(cluster.dir) / "run2", Path(cluster.dir) / "run2" / "masks"
    array, merge = submit(cluster, data_dir, masks, work, refs=False)
    logs = logs_of(work, array)

    def one_case_done():
        running = {t for t, j in array_states(cluster, array).items() if j["JobState"] == "RUNNING"}
        return next((t for t in sorted(running) if len(ok_lines(logs[t])) == 1), None)
    victim = wait_for("a task with one of its two cases done", lambda: (v := one_case_done()) is not None and [v],
                      every=0.1)[0]
    r = cluster.run("scancel", f"{array}_{victim}", timeout=30)
    assert r.returncode == 0, r.stderr

    states = wait_for("the array to finish", lambda: array_finished(cluster, array))
    assert states[victim]["JobState"] == "CANCELLED", states[victim]
    for t, j in states.items():
        if t != victim:
            assert (j["JobState"], j["ExitCode"]) == ("COMPLETED", "0:0"), (t, j)
    # afterok can no longer be met: the merge never runs and waits until cancelled.
    m = wait_for("the merge to be left pending", lambda: [j for j in jobs(cluster, merge)
                                                          if j["Reason"] == "DependencyNeverSatisfied"])
    assert m[0]["JobState"] == "PENDING", m
    assert cluster.run("scancel", merge, timeout=30).returncode == 0
    wait_for("the merge to be cancelled", lambda: jobs(cluster, merge)[0]["JobState"] == "CANCELLED")

    first = {t: ok_lines(logs[t]) for t in range(TASKS)}
    unfinished = sorted(set(names[victim::TASKS]) - set(first[victim]))
    assert len(unfinished) == 1, (first, logs[victim].read_text())
    assert "segment: done" not in logs[victim].read_text()
    present = sorted(p.name for p in masks.iterdir() if not p.name.startswith("."))
    assert present == sorted(f"{n}.nii.gz" for n in names if n not in unfinished)

    array2, merge2 = submit(cluster, data_dir, masks, work, refs=False)
    states2 = wait_for("the resubmitted array to finish", lambda: array_finished(cluster, array2))
    merged2 = wait_for("the merge job to finish", lambda: [j for j in jobs(cluster, merge2) if j["JobState"] in DONE])
    for t, j in states2.items():
        assert (j["JobState"], j["ExitCode"]) == ("COMPLETED", "0:0"), (t, j)
    assert (merged2[0]["JobState"], merged2[0]["ExitCode"]) == ("COMPLETED", "0:0")

    # Nothing lost, nothing done twice: across both submissions each case was segmented exactly once.
    second = [c for log in logs_of(work, array2) for c in ok_lines(log)]
    assert second == unfinished
    assert sorted(second + [c for cs in first.values() for c in cs]) == names
    assert sorted(p.name for p in masks.iterdir()) == [f"{n}.nii.gz" for n in names], list(masks.iterdir())
    run = json.loads((work / f"run-{array2}.json").read_text())
    assert run["summary"] == {"discovered": CASES, "cases": CASES, "ok": 1, "skipped": CASES - 1, "failed": 0}
    assert [c["name"] for c in run["cases"]] == names and run["exit_code"] == 0
