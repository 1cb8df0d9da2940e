"""A/B of the engine alone, in lockstep: the working tree's segment-bench against another build of it.

Two builds of `segment-bench` (B = this tree; A = a git revision, or this tree built with other Swift flags) load
the same Swin-T model file and take turns one batch at a time (engine_bench.lockstep), so the shared machine's slow
spells hit both alike. Prints a markdown table: per-slice median / min ms of each and B / A (< 1: B is faster).

    make engine-ab AB_REV=main~3              # has a change made the engine slower?
    make engine-ab AB_FLAGS=-Ounchecked       # what does building without runtime checks buy?
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import clean_env, engine_env, lockstep  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def build(source: Path, build_path: Path, flags: list[str]) -> Path:
    """Release build of segment-bench from `source` into `build_path` with extra swiftc `flags`."""
    cmd = ["swift", "build", "-c", "release", "--product", "segment-bench", "--package-path", str(source),
           "--build-path", str(build_path)]
    for f in flags:
        cmd += ["-Xswiftc", f]
    subprocess.run(cmd, check=True, env=clean_env(), stdout=subprocess.DEVNULL)
    return build_path / "release" / "segment-bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", help="A: this git revision (built in a temporary worktree)")
    ap.add_argument("--flags", default="", help="A: this tree with these extra swiftc flags (space-separated)")
    ap.add_argument("--b-flags", default="", help="extra swiftc flags for B (this tree)")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--steps", type=int, default=30, help="timed batches per runner at batch 1 (batch 16: a third)")
    ap.add_argument("--pause", type=float, default=0.2)
    ap.add_argument("--work", default=str(ROOT / "bench-out" / "ab"), help="build folders (kept between runs)")
    args = ap.parse_args()
    if bool(args.rev) == bool(args.flags):
        ap.error("give exactly one of --rev and --flags")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    b_bin = build(ROOT, work / "build-b", args.b_flags.split())
    if args.rev:
        src = work / "src-a"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(src)], capture_output=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(src), args.rev], check=True,
                       capture_output=True)
        try:
            a_bin = build(src, work / "build-a-rev", [])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(src)], capture_output=True)
        a_name = f"A = {args.rev}"
    else:
        a_bin = build(ROOT, work / "build-a-flags", args.flags.split())
        a_name = f"A = this tree with {args.flags}"

    rows = []
    with tempfile.TemporaryDirectory(prefix="segment-ab-") as tmp:
        model = Path(tmp) / "swint.segm"
        subprocess.run([str(b_bin), "make-model", "--out", str(model)], check=True, env=clean_env(),
                       stdout=subprocess.DEVNULL)
        for b in [int(x) for x in args.batches.split(",")]:
            for t in [int(x) for x in args.threads.split(",")]:
                steps = args.steps if b == 1 else max(4, args.steps // 3)
                cmd = lambda exe: ([str(exe), "run", "--model", str(model), "--threads", str(t), "--batch", str(b),
                                    "--warmup", "2", "--lockstep"], engine_env(t))
                r = lockstep({"a": cmd(a_bin), "b": cmd(b_bin)}, steps, args.pause)
                if r["a"] is None or r["b"] is None:
                    raise SystemExit(f"batch {b} threads {t}: a runner failed (see above)")
                if r["a"]["label_checksum"] != r["b"]["label_checksum"]:
                    print(f"batch {b} threads {t}: the two builds' labels differ", file=sys.stderr)
                rows.append((b, t, steps, r["a"], r["b"]))
                print(f"batch {b} threads {t}: A {r['a']['per_slice_ms_median']:.1f} B {r['b']['per_slice_ms_median']:.1f}"
                      " ms/slice median", file=sys.stderr)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"Engine A/B ({a_name}; B = this tree{' with ' + args.b_flags if args.b_flags else ''}), {cpu}, "
          f"{os.cpu_count()} logical CPUs; Swin-T 224, random weights; ms per slice, median / min, runners in lockstep.\n")
    print("| batch | threads | timed batches | A | B | B / A median (min) | same labels |")
    print("|---|---|---|---|---|---|---|")
    for b, t, steps, ra, rb in rows:
        am, bm = ra["per_slice_ms_median"], rb["per_slice_ms_median"]
        print(f"| {b} | {t} | {steps} | {am:.1f} / {ra['per_slice_ms_min']:.1f} | {bm:.1f} / {rb['per_slice_ms_min']:.1f} "
              f"| {bm / am:.3f} ({rb['per_slice_ms_min'] / ra['per_slice_ms_min']:.3f}) "
              f"| {'yes' if ra['label_checksum'] == rb['label_checksum'] else 'NO'} |")


if __name__ == "__main__":
    main()
