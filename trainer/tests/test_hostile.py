"""The hostile corpus (trainer/fixtures/gen_hostile.py) against the `segment` executable, one test per case.

Each case runs in a fresh folder holding copies of its files, under a virtual-memory limit (`ulimit -v`, 4 GiB by
default: SEGMENT_HOSTILE_VMEM_MB) and a time limit (60 s unless the case says less). A case fails on a signal, a
timeout, exit 1, another exit code than expected, a missing stderr fragment, a resident-memory peak above the case's
ceiling, an input changed, an output missing or not loadable after a success, or any file left behind that is not
an expected output (a half-written output or a temporary file). The corpus comes from `make fixtures`
($SEGMENT_FIXTURES/hostile, default .fixtures/hostile); the binary is $SEGMENT_BIN (default .build/release/segment).

A summary of every case, grouped by what went wrong, without pytest:
    SEGMENT_BIN=.build/release/segment .venv/bin/python trainer/tests/test_hostile.py [--only PREFIX] [--json F]

/dev/null and /dev/stdout: as root, {devnull} is a private character device (1, 3) in the case's folder and
{devstdout} a private symbolic link to /proc/self/fd/1, so that a tool that renames its output over the name (the bug
these cases look for) cannot replace the machine's /dev/null; as another user the real names are used (a rename
over them fails with a permission error instead). After every case the real /dev/null and /dev/stdout are checked
too (and /dev/null restored, as root), so a regression fails loudly instead of breaking the machine.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SEGMENT_BIN") or REPO / ".build" / "release" / "segment")
FIXTURES = Path(os.environ.get("SEGMENT_FIXTURES") or REPO / ".fixtures")
CORPUS = FIXTURES / "hostile"
MANIFEST = CORPUS / "cases.json"
VMEM_MB = int(os.environ.get("SEGMENT_HOSTILE_VMEM_MB", "4096"))
DEFAULT_TIMEOUT = 60.0
ROOT = os.geteuid() == 0


def load_cases() -> list[dict]:
    if not MANIFEST.is_file():
        return []
    with open(MANIFEST) as f:
        return json.load(f)["cases"]


CASES = load_cases()


# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    case: dict
    code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    seconds: float = 0.0
    rss_mb: float = 0.0
    timed_out: bool = False
    problems: list = field(default_factory=list)     # (kind, text)

    @property
    def first_line(self) -> str:
        lines = [l for l in self.stderr.decode("utf-8", "replace").splitlines() if l.strip()]
        return lines[0][:300] if lines else "(no stderr)"

    def add(self, kind: str, text: str) -> None:
        self.problems.append((kind, text))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# The executable is started by a small launcher, a fresh Python without site packages: Linux carries a process's
# peak RSS across execve (exec_mmap records the old image's high-water mark), so a child forked straight from
# pytest (torch loaded) would start with pytest's peak. The launcher sets the limits (ulimit -v, no core files),
# forks, execs, waits and writes the child's wait status and peak RSS (KB) to a pipe.
LAUNCHER = r"""
import os, resource, sys
vm, fd, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (vm, vm))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.close(fd)
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
os.write(fd, ("%d %d" % (status, usage.ru_maxrss)).encode())
"""


def device_ok(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)


def machine_devices_intact(outcome: Outcome) -> None:
    """The real /dev/null and /dev/stdout, after every case: a regression must not break the machine silently."""
    if not device_ok("/dev/null"):
        outcome.add("device", "/dev/null is no longer the null character device")
        if ROOT:
            try:
                os.unlink("/dev/null")
            except OSError:
                pass
            os.mknod("/dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            os.chmod("/dev/null", 0o666)
    try:
        link = os.readlink("/dev/stdout")
    except OSError:
        link = None
    if link is not None and link != "/proc/self/fd/1":
        outcome.add("device", f"/dev/stdout now points to {link}")


def entries(folder: Path) -> set[str]:
    """Every non-directory entry under `folder` (files, links, FIFOs, devices), relative, links not followed."""
    found = set()
    for d, dirs, files in os.walk(folder, followlinks=False):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            found.add(os.path.relpath(os.path.join(d, name), folder))
    return found


def prepare(case: dict, work: Path):
    """Copies the case's files, makes its setup entries, resolves the placeholders. Returns (argv, env, hashed
    inputs {path: sha256}, entries present before the run)."""
    hashed: dict[Path, str] = {}
    for src, dst in case["files"]:
        target = work / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / src, target)
        hashed[target] = sha256(target)
    for s in case["setup"]:
        if "fifo" in s:
            (work / s["fifo"]).parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(work / s["fifo"])
        elif "symlink" in s:
            os.symlink(s["to"], work / s["symlink"])
        elif "mkdir" in s:
            (work / s["mkdir"]).mkdir(parents=True, exist_ok=True)
        else:
            raise ValueError(f"unknown setup {s}")
    subs = {"{model}": str(CORPUS / "models" / "tiny.segm"), "{model_ras}": str(CORPUS / "models" / "tiny-ras.segm"),
            "{default_model}": str(REPO / "models" / "swin-unet-lits-advmim.segm"), "{tmp}": str(work)}
    text = json.dumps(case["argv"]) + json.dumps(case.get("env", {}))
    if "{devnull}" in text:
        if ROOT:
            os.mknod(work / "devnull", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            subs["{devnull}"] = str(work / "devnull")
        else:
            subs["{devnull}"] = "/dev/null"
    if "{devstdout}" in text:
        if ROOT:
            os.symlink("/proc/self/fd/1", work / "devstdout")
            subs["{devstdout}"] = str(work / "devstdout")
        else:
            subs["{devstdout}"] = "/dev/stdout"
    for p in ("{model}", "{model_ras}", "{default_model}"):
        if p in text:
            hashed[Path(subs[p])] = sha256(Path(subs[p]))

    def sub(s: str) -> str:
        for k, v in subs.items():
            s = s.replace(k, v)
        return s
    argv = [str(BIN)] + [sub(a) for a in case["argv"]]
    env = {k: v for k, v in os.environ.items() if k != "SEGMENT_MODEL"}
    env.update({k: sub(v) for k, v in case.get("env", {}).items()})
    return argv, env, hashed, entries(work), subs


def execute(argv, env, cwd: Path, timeout: float, outcome: Outcome) -> None:
    """Runs argv under the limits through the launcher; records the code, the output, the peak RSS and a timeout
    (the whole process group is then killed)."""
    start = time.monotonic()
    rfd, wfd = os.pipe()
    launcher = [sys.executable, "-S", "-E", "-c", LAUNCHER, str(VMEM_MB << 20), str(wfd)] + list(argv)
    p = subprocess.Popen(launcher, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, pass_fds=(wfd,), start_new_session=True)
    os.close(wfd)
    chunks = {"out": [], "err": [], "status": []}

    def drain(read, key):
        for block in iter(read, b""):
            chunks[key].append(block)
    readers = [threading.Thread(target=drain, args=(lambda: p.stdout.read(65536), "out"), daemon=True),
               threading.Thread(target=drain, args=(lambda: p.stderr.read(65536), "err"), daemon=True),
               threading.Thread(target=drain, args=(lambda: os.read(rfd, 4096), "status"), daemon=True)]
    for r in readers:
        r.start()
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        outcome.timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    outcome.seconds = time.monotonic() - start
    for r in readers:
        r.join(timeout=10)
    os.close(rfd)
    p.stdout.close()
    p.stderr.close()
    outcome.stdout, outcome.stderr = b"".join(chunks["out"]), b"".join(chunks["err"])
    report = b"".join(chunks["status"]).split()
    if len(report) == 2:
        outcome.code = os.waitstatus_to_exitcode(int(report[0]))
        outcome.rss_mb = int(report[1]) / 1024.0
    elif not outcome.timed_out:
        outcome.add("setup", f"the launcher ended with {p.returncode} without the child's status")


def check_output(path: Path, spec: dict) -> str | None:
    """None if the output is what a success promises, else what is wrong."""
    kind = spec["kind"]
    try:
        if kind == "nifti":
            import nibabel as nib
            import numpy as np
            img = nib.load(str(path))
            img.affine                                      # the qform/sform must make sense to nibabel
            data = np.asanyarray(img.dataobj)
            if list(data.shape) != spec["shape"]:
                return f"{spec['path']}: shape {list(data.shape)}, expected {spec['shape']}"
            if data.dtype != np.uint8:
                return f"{spec['path']}: dtype {data.dtype}, expected uint8"
        elif kind == "png":
            from PIL import Image
            with Image.open(path) as im:
                im.load()
                if [im.height, im.width] != spec["shape"] or im.mode not in ("L", "P", "1"):
                    return f"{spec['path']}: {im.width}x{im.height} {im.mode}, expected (h, w) {spec['shape']} gray"
        elif kind == "segm":
            import segment_format_py as fmt
            fmt.read(str(path))
        elif kind == "json":
            with open(path) as f:
                json.load(f)
        else:
            return f"unknown output kind {kind}"
    except Exception as e:                                   # any failure to load is the finding
        return f"{spec['path']} does not load: {type(e).__name__}: {e}"
    return None


def run_case(case: dict) -> Outcome:
    outcome = Outcome(case)
    if not BIN.is_file() or not os.access(BIN, os.X_OK):
        outcome.add("setup", f"the segment executable {BIN} is missing: run `make build` or set SEGMENT_BIN")
        return outcome
    expected = case["exit"] if isinstance(case["exit"], list) else [case["exit"]]
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        work = Path(tmp)
        argv, env, hashed, before, subs = prepare(case, work)
        execute(argv, env, work, float(case.get("timeout", DEFAULT_TIMEOUT)), outcome)
        code = outcome.code
        err = outcome.stderr.decode("utf-8", "replace")

        if outcome.timed_out:
            outcome.add("timeout", f"no exit within {case.get('timeout', DEFAULT_TIMEOUT)} s (killed)")
        elif code is None:
            pass
        elif code < 0:
            outcome.add("signal", f"killed by signal {-code} ({signal.Signals(-code).name})")
        elif code == 1:
            outcome.add("exit1", "exit 1 (internal error)")
        elif code not in expected:
            outcome.add("code", f"exit {code}, expected {case['exit']}")
        if code is not None and code > 0 and not outcome.timed_out:
            low = err.lower()
            for frag in case["stderr"]:
                alts = frag if isinstance(frag, list) else [frag]
                if not any(a.lower() in low for a in alts):
                    outcome.add("message", "stderr lacks " + (repr(alts[0]) if len(alts) == 1 else
                                                               "any of " + repr(alts)))
        if case.get("max_rss_mb") and outcome.rss_mb > case["max_rss_mb"]:
            outcome.add("memory", f"peak RSS {outcome.rss_mb:.0f} MB above {case['max_rss_mb']} MB")

        # inputs untouched, outputs present after success, nothing else left behind
        for path, digest in hashed.items():
            if not path.exists():
                outcome.add("input", f"input {path.name} was removed")
            elif sha256(path) != digest:
                outcome.add("input", f"input {path.name} was modified")
        after = entries(work)
        finished = not outcome.timed_out and code is not None and code >= 0
        success = finished and code in (0, 6)
        required = [o for o in case["outputs"] if success or (finished and o.get("always"))]
        optional = [{"path": p, "kind": "json"} for p in case.get("optional", [])]
        leftovers = sorted(after - before - {o["path"] for o in required + optional})
        if leftovers:
            outcome.add("leftover", "left behind: " + ", ".join(repr(x) for x in leftovers[:5])
                        + (f" (+{len(leftovers) - 5})" if len(leftovers) > 5 else ""))
        if code in expected:
            for spec in required:
                if spec["path"] not in after:
                    outcome.add("output", f"{spec['path']} missing after exit {code}")
                else:
                    problem = check_output(work / spec["path"], spec)
                    if problem:
                        outcome.add("output", problem)
        for spec in optional:
            if spec["path"] in after:
                problem = check_output(work / spec["path"], spec)
                if problem:
                    outcome.add("output", problem)
        if "{devnull}" in subs and not device_ok(subs["{devnull}"]):
            outcome.add("device", f"{subs['{devnull}']} is no longer a character device (1, 3)")
        if "{devstdout}" in subs:
            name = subs["{devstdout}"]
            if not os.path.islink(name) or os.readlink(name) != "/proc/self/fd/1":
                outcome.add("device", f"{name} was replaced")
        if case.get("stdout_json") and code == 0:
            try:
                json.loads(outcome.stdout)
            except ValueError:
                outcome.add("output", "stdout is not the JSON report")
        machine_devices_intact(outcome)
    return outcome


def describe(o: Outcome) -> str:
    c = o.case
    head = f"{c['id']}: segment {' '.join(c['argv'])}"
    lines = [head, f"  observed exit {o.code}{' (timeout)' if o.timed_out else ''}, expected {c['exit']}, "
                   f"{o.seconds:.1f} s, peak RSS {o.rss_mb:.0f} MB",
             f"  stderr first line: {o.first_line}"]
    lines += [f"  [{k}] {t}" for k, t in o.problems]
    if c.get("note"):
        lines.append(f"  note: {c['note']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# pytest

def test_corpus_and_binary_exist():
    assert MANIFEST.is_file(), f"no hostile corpus at {CORPUS}: run `make fixtures` or set SEGMENT_FIXTURES"
    assert BIN.is_file(), f"no segment executable at {BIN}: run `make build` or set SEGMENT_BIN"
    assert len(CASES) >= 120


@pytest.mark.parametrize("case", CASES or [None], ids=[c["id"] for c in CASES] or ["corpus-missing"])
def test_hostile_case(case):
    if case is None:
        pytest.fail(f"no hostile corpus at {MANIFEST}: run `make fixtures` or set SEGMENT_FIXTURES")
    outcome = run_case(case)
    if outcome.problems:
        pytest.fail(describe(outcome), pytrace=False)


# ---------------------------------------------------------------------------------------------------------------
# the summary

ORDER = ["setup", "signal", "timeout", "exit1", "memory", "device", "code", "message", "input", "leftover", "output"]


def main(argv: list[str]) -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="run the cases whose id starts with this")
    ap.add_argument("--json", help="write every outcome as JSON here")
    args = ap.parse_args(argv)
    if not MANIFEST.is_file():
        print(f"no corpus at {MANIFEST}: run make fixtures", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO / "trainer"))
    cases = [c for c in CASES if c["id"].startswith(args.only)]
    outcomes = []
    for i, c in enumerate(cases):
        o = run_case(c)
        outcomes.append(o)
        print(f"[{i + 1}/{len(cases)}] {'FAIL' if o.problems else 'ok  '} {c['id']} exit={o.code} "
              f"{o.seconds:.1f}s", file=sys.stderr, flush=True)
    failed = [o for o in outcomes if o.problems]
    groups: dict[str, list[Outcome]] = {}
    for o in failed:
        kinds = [k for k, _ in o.problems]
        groups.setdefault(min(kinds, key=ORDER.index), []).append(o)
    by_class: dict[str, list[int]] = {}
    for o in outcomes:
        by_class.setdefault(o.case["class"], [0, 0])
        by_class[o.case["class"]][0] += 1
        by_class[o.case["class"]][1] += bool(o.problems)
    print(f"{len(outcomes)} cases, {len(failed)} failing")
    print("class: cases (failing): " + ", ".join(f"{k} {n} ({f})" for k, (n, f) in by_class.items()))
    for kind in ORDER:
        if kind in groups:
            print(f"\n== {kind} ({len(groups[kind])})")
            for o in groups[kind]:
                print(describe(o))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"id": o.case["id"], "class": o.case["class"], "argv": o.case["argv"],
                        "expected": o.case["exit"],
                        "code": o.code, "timed_out": o.timed_out, "seconds": round(o.seconds, 2),
                        "rss_mb": round(o.rss_mb), "problems": o.problems, "stderr_first_line": o.first_line,
                        "stderr": o.stderr.decode("utf-8", "replace")[-4000:]} for o in outcomes], f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
