"""Engine benchmark: Swin-T (224, 96, [2,2,2,2], [3,6,12,24], 9 classes) per-slice latency of this engine against
PyTorch eager (torch.inference_mode), ONNX Runtime and OpenVINO (fp32), at batch 1 and 16 and 1 and 2 threads,
plus each one's peak RSS, the engine's load time, and the machine's OpenBLAS sgemm peak. Prints a markdown
section (the engine part of docs/PERFORMANCE.md). A benchmark, not a test: it asserts nothing.

Every measurement runs in its own process (so peak RSS is that runner's alone); latency = wall time of one
batch / batch size; every configuration runs --rounds times, interleaved with the others (a slow spell of a shared
machine then hits everyone alike), --iters runs after --warmup runs each time; median and min over all runs.
OpenBLAS: these machines set OPENBLAS_CORETYPE=Haswell (AVX2 kernels); for its own commands this script removes
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE so OpenBLAS picks its kernels for the CPU it finds (the output says so).

Usage: PYTHONPATH=trainer python bench/engine_bench.py --segment .build/release/segment [--rounds 5] [--iters 4] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCHES = (1, 16)
THREADS = (1, 2)
PEERS = ("pytorch", "onnxruntime", "openvino")


def swin_t_gflop(img=224, P=4, E=96, depths=(2, 2, 2, 2), heads=(3, 6, 12, 24), ws=7, nc=9, mlp=4.0, cin=3) -> float:
    """Multiply-adds x 2 of one slice, counted layer by layer (LayerNorm, softmax, GELU not counted)."""
    R = img // P
    f = 2 * R * R * E * cin * P * P                                  # patch embedding conv
    def blocks(res, C, h, depth):
        w = min(ws, res)
        L, N = res * res, w * w
        per = 2 * L * C * (3 * C + C + 2 * int(C * mlp))            # qkv, proj, fc1, fc2
        per += 2 * 2 * L * N * C                                      # q k^T and attn @ v over all heads
        return depth * per
    for i, d in enumerate(depths):
        res, C = R >> i, E << i
        f += blocks(res, C, heads[i], d)
        if i < len(depths) - 1:
            f += 2 * (res // 2) ** 2 * 4 * C * 2 * C                  # patch merging
    L_ = len(depths)
    for k in range(L_):
        i = L_ - 1 - k
        res, C = R >> i, E << i
        if k == 0:
            f += 2 * res * res * C * 2 * C                            # layers_up.0 expand
        else:
            f += 2 * res * res * 2 * C * C                            # concat_back_dim
            f += blocks(res, C, heads[i], depths[i])
            if k < L_ - 1:
                f += 2 * res * res * C * 2 * C                        # patch expand
    f += 2 * R * R * E * P * P * E                                    # final x4 expand
    f += 2 * img * img * E * nc                                       # output 1x1 conv
    return f / 1e9


def clean_env(threads: int | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    return env


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not the rusage of a child: Linux carries the forking parent's
    high-water mark over exec into the child's ru_maxrss."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def engine_env(threads: int) -> dict:
    """The engine's own threads are set by --threads; segment-bench links OpenBLAS only for its sgemm command, so
    OpenBLAS gets one thread here and starts no idle (spinning) thread beside the engine's."""
    env = clean_env(threads)
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def run_measured(cmd: list[str], env: dict) -> dict:
    """Runs a command printing one JSON line (with `peak_rss_mb`) and returns it."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------
# Child mode: one peer framework, one batch size, one thread count.

def child(framework: str, batch: int, threads: int, warmup: int, iters: int, workdir: str) -> None:
    import numpy as np
    import torch
    from segment_ref import SwinUNet, SwinUNetConfig

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    model = SwinUNet(SwinUNetConfig()).eval()
    x = torch.rand(batch, 3, 224, 224)
    t0 = time.perf_counter()
    if framework == "pytorch":
        def step():
            with torch.inference_mode():
                return model(x)
    elif framework == "onnxruntime":
        import onnxruntime as ort
        path = Path(workdir) / f"swint-b{batch}.onnx"
        if not path.exists():
            torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"], opset_version=17, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        xn = x.numpy()
        def step():
            return sess.run(None, {"x": xn})
    elif framework == "openvino":
        import openvino as ov
        path = Path(workdir) / f"swint-b{batch}.onnx"
        if not path.exists():
            torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"], opset_version=17, dynamo=False)
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1})
        req = compiled.create_infer_request()
        xn = x.numpy()
        def step():
            return req.infer({0: xn})
    else:
        raise SystemExit(f"unknown framework {framework}")
    load = time.perf_counter() - t0
    times = []
    for i in range(warmup + iters):
        s = time.perf_counter()
        step()
        if i >= warmup:
            times.append((time.perf_counter() - s) / batch)
    times.sort()
    print(json.dumps({"framework": framework, "batch": batch, "threads": threads, "load_seconds": load,
                      "per_slice_ms_median": 1000 * times[len(times) // 2], "per_slice_ms_min": 1000 * times[0],
                      "per_slice_ms_all": [1000 * t for t in times], "peak_rss_mb": peak_rss_mb()}))


# ---------------------------------------------------------------------------------------------------------------

def make_model(segment: Path, bench: Path, workdir: Path) -> tuple[Path, str]:
    """A Swin-T model file: through `segment convert` of a segment_ref checkpoint when the converter works, else
    random weights written by segment-bench (latency does not depend on the weight values)."""
    import torch
    from segment_ref import SwinUNet, SwinUNetConfig
    model_path = workdir / "swint.segmodel"
    ckpt = workdir / "swint.pth"
    torch.manual_seed(0)
    torch.save(SwinUNet(SwinUNetConfig()).state_dict(), ckpt)
    r = subprocess.run([str(segment), "convert", str(ckpt), "-o", str(model_path), "--img-size", "224"],
                       capture_output=True, text=True, env=clean_env())
    if r.returncode == 0 and model_path.exists():
        return model_path, "converted from a segment_ref checkpoint with `segment convert`"
    subprocess.run([str(bench), "make-model", "--out", str(model_path)], check=True, env=clean_env())
    return model_path, "random weights written by segment-bench (`segment convert` was not usable: " + \
        (r.stderr.strip().splitlines() or ["no message"])[-1][:120] + ")"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segment", help="the segment executable (segment-bench must be beside it)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=4, help="timed runs per round at batch 1 (batch 16: half, at least 2)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds over every configuration, interleaved, so that a slow spell of a shared machine "
                         "hits the engine and its peers alike; median and min are over all rounds' runs")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--child", nargs=4, metavar=("FRAMEWORK", "BATCH", "THREADS", "WORKDIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        f, b, t, w = args.child
        b, t = int(b), int(t)
        child(f, b, t, args.warmup, args.iters, w)
        return

    if not args.segment:
        ap.error("--segment is required")
    segment = Path(args.segment).resolve()
    bench = segment.parent / "segment-bench"
    if not bench.exists():
        raise SystemExit(f"{bench} not found: build it with `swift build -c release --product segment-bench`")
    peers = [p for p in args.peers.split(",") if p]
    gflop = swin_t_gflop()
    iters = {1: args.iters, 16: max(2, args.iters // 2)}
    results: dict[tuple[str, int, int], dict] = {}

    def merge(key, r):
        """Pools the runs of one configuration over the rounds: median / min of all runs, max of the peak RSS."""
        old = results.get(key)
        runs = (old["per_slice_ms_all"] if old else []) + r["per_slice_ms_all"]
        runs.sort()
        r = dict(r, per_slice_ms_all=runs, per_slice_ms_median=runs[len(runs) // 2], per_slice_ms_min=runs[0],
                 peak_rss_mb=max(r["peak_rss_mb"], old["peak_rss_mb"] if old else 0), rounds=(old or {}).get("rounds", 0) + 1)
        results[key] = r
        return r

    with tempfile.TemporaryDirectory(prefix="segment-bench-") as tmp:
        workdir = Path(tmp)
        model_path, model_note = make_model(segment, bench, workdir)
        sgemm = {t: run_measured([str(bench), "sgemm", "--threads", str(t)], clean_env()) for t in THREADS}
        for round_ in range(args.rounds):
            for b in BATCHES:
                for t in THREADS:
                    r = merge(("engine", b, t), run_measured(
                        [str(bench), "run", "--model", str(model_path), "--threads", str(t), "--batch", str(b),
                         "--warmup", str(args.warmup), "--iters", str(iters[b])], engine_env(t)))
                    print(f"round {round_ + 1} engine batch {b} threads {t}: {r['per_slice_ms_median']:.1f} ms/slice",
                          file=sys.stderr)
                    for peer in peers:
                        try:
                            r = merge((peer, b, t), run_measured(
                                [sys.executable, __file__, "--warmup", str(args.warmup), "--iters", str(iters[b]),
                                 "--child", peer, str(b), str(t), str(workdir)], clean_env(t)))
                            print(f"round {round_ + 1} {peer} batch {b} threads {t}: {r['per_slice_ms_median']:.1f} ms/slice",
                                  file=sys.stderr)
                        except RuntimeError as e:
                            print(f"{peer} batch {b} threads {t}: FAILED {e}", file=sys.stderr)
        model_mb = model_path.stat().st_size / 2**20

    md = render(results, peers, gflop, sgemm, model_mb, model_note)
    print(md)
    if args.out:
        Path(args.out).write_text(md)


def render(results, peers, gflop, sgemm, model_mb, model_note) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        "## Engine: Swin-T latency against PyTorch, ONNX Runtime and OpenVINO",
        "",
        f"Swin-T (224x224, embed 96, depths 2,2,2,2, heads 3,6,12,24, window 7, 9 classes): {gflop:.2f} GFLOP per slice.",
        f"Machine: {cpu}, {os.cpu_count()} logical CPUs. Model file {model_mb:.0f} MB ({model_note}).",
        "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were removed from the environment of every measured command "
        "(OpenBLAS picks its kernels for this CPU). OpenBLAS sgemm peak (2048^3): "
        + ", ".join(f"{t} thread{'s' if t > 1 else ''} {sgemm[t]['gflops']:.0f} GFLOP/s" for t in THREADS)
        + f" ({sgemm[1]['openblas_config']}).",
        "",
        f"Per-slice latency in ms (median / min over the timed runs of {max(r.get('rounds', 1) for r in results.values())} "
        "interleaved rounds, each after warm-up in a fresh process; a shared VM's speed drifts by up to 1.5x over "
        "minutes, so compare the ratios, measured side by side, rather than absolute times across runs); "
        "the engine runs `predict` "
        "(logits + argmax); peers return logits. Ratio = engine / peer median (< 1: the engine is faster).",
        "",
        "| batch | threads | engine | GFLOP/s | " + " | ".join(f"{p} | ratio" for p in peers) + " |",
        "|---|---|---|---|" + "---|---|" * len(peers),
    ]
    for b in BATCHES:
        for t in THREADS:
            e = results.get(("engine", b, t))
            if not e:
                continue
            row = [str(b), str(t), f"{e['per_slice_ms_median']:.1f} / {e['per_slice_ms_min']:.1f}",
                   f"{gflop / (e['per_slice_ms_median'] / 1000):.0f}"]
            for p in peers:
                r = results.get((p, b, t))
                row += [f"{r['per_slice_ms_median']:.1f} / {r['per_slice_ms_min']:.1f}",
                        f"{e['per_slice_ms_median'] / r['per_slice_ms_median']:.2f}"] if r else ["failed", "-"]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Peak RSS (MB) of each runner process (batch 1 = one slice at a time; includes loading the model):", "",
              "| batch | threads | engine | " + " | ".join(peers) + " |", "|---|---|---|" + "---|" * len(peers)]
    for b in BATCHES:
        for t in THREADS:
            if ("engine", b, t) not in results:
                continue
            row = [str(b), str(t), f"{results[('engine', b, t)]['peak_rss_mb']:.0f}"]
            row += [f"{results[(p, b, t)]['peak_rss_mb']:.0f}" if (p, b, t) in results else "-" for p in peers]
            lines.append("| " + " | ".join(row) + " |")
    e1 = results.get(("engine", 1, 1))
    if e1:
        lines += ["", f"Engine load time (mmap + full validation + checksum + binding, model file {model_mb:.0f} MB): "
                      f"{e1['load_seconds'] * 1000:.0f} ms (of which ModelFile.open {e1['open_seconds'] * 1000:.0f} ms). "
                      f"Peak RSS for one slice vs the target (model file + 150 MB = {model_mb + 150:.0f} MB): "
                      f"{e1['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
