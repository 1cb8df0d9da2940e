"""Engine benchmark: Swin-T (224, 96, [2,2,2,2], [3,6,12,24], 9 classes) per-slice latency of this engine (fp32, and
bf16 where the CPU has bf16 kernels) against PyTorch eager (torch.inference_mode; fp32, and bf16 under
torch.autocast), ONNX Runtime (fp32) and OpenVINO (fp32, and its default precision: bf16 on a CPU with AVX512-BF16
or AMX, which is what a user who picks OpenVINO gets; the table names the precision it chose), at batch 1 and 16 and
1 and 2 threads,
plus each one's peak RSS, the engine's load time, and the machine's OpenBLAS sgemm peak. Prints a markdown
section (the engine part of docs/PERFORMANCE.md). A benchmark, not a test: it asserts nothing.

Every framework runs in its own process (so peak RSS is that runner's alone); latency = wall time of one batch /
batch size. Per configuration (batch, threads) all runners are loaded and warmed up (--warmup batches) one after the
other, then take turns, one timed batch each, the order rotating every turn, --rounds x --iters turns, with --pause
seconds of quiet before each batch: a slow spell of the shared machine then hits the engine and its peers alike,
which separate runs minutes apart did not guarantee. Median and min over all of a runner's batches.
OpenBLAS: these machines set OPENBLAS_CORETYPE=Haswell (AVX2 kernels); for its own commands this script removes
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE so OpenBLAS picks its kernels for the CPU it finds (the output says so).

Usage: PYTHONPATH=trainer python bench/engine_bench.py --segment .build/release/segment [--rounds 5] [--iters 4]
       [--threads 1,2] [--batches 1,16] [--peers ...] [--precisions fp32,bf16] [--out FILE]
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
PEERS = ("pytorch", "pytorch-bf16", "onnxruntime", "openvino", "openvino-default")
# The engine's runners: "engine" (fp32, the default path) and "engine-bf16" (segment-bench run --precision bf16).
PRECISIONS = ("fp32", "bf16")


def engine_name(precision: str) -> str:
    return "engine" if precision == "fp32" else f"engine-{precision}"


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

def child(framework: str, batch: int, threads: int, warmup: int, workdir: str) -> None:
    """Loads one framework, warms it up, prints {"ready": true}, then times one batch per line of standard input
    (printing its per-slice ms) until end of input, and prints the summary JSON."""
    import numpy as np
    import torch
    from segment_torch import SwinUNet, SwinUNetConfig

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    model = SwinUNet(SwinUNetConfig()).eval()
    x = torch.rand(batch, 3, 224, 224)
    t0 = time.perf_counter()
    precision = "f32"
    if framework == "pytorch":
        def step():
            with torch.inference_mode():
                return model(x)
    elif framework == "pytorch-bf16":
        precision = "bf16 (torch.autocast)"
        def step():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
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
    elif framework in ("openvino", "openvino-default"):
        import openvino as ov
        path = Path(workdir) / f"swint-b{batch}.onnx"
        if not path.exists():
            torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["logits"], opset_version=17, dynamo=False)
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if framework == "openvino":            # fp32; openvino-default leaves the precision to OpenVINO
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        precision = str(compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: '", "").replace("'>", "")
        req = compiled.create_infer_request()
        xn = x.numpy()
        def step():
            return req.infer({0: xn})
    else:
        raise SystemExit(f"unknown framework {framework}")
    load = time.perf_counter() - t0
    times = []
    for _ in range(warmup):
        step()
    print(json.dumps({"ready": True}), flush=True)
    for _ in sys.stdin:                        # one timed batch per line (lockstep with the other runners)
        s = time.perf_counter()
        step()
        times.append((time.perf_counter() - s) / batch)
        print(1000 * times[-1], flush=True)
    if not times:
        raise SystemExit("no step was asked for")
    times.sort()
    print(json.dumps({"framework": framework, "precision": precision, "batch": batch, "threads": threads, "load_seconds": load,
                      "per_slice_ms_median": 1000 * times[len(times) // 2], "per_slice_ms_min": 1000 * times[0],
                      "per_slice_ms_all": [1000 * t for t in times], "peak_rss_mb": peak_rss_mb()}))


# ---------------------------------------------------------------------------------------------------------------

def lockstep(commands: dict[str, tuple[list[str], dict]], steps: int, pause: float) -> dict[str, dict | None]:
    """Starts every runner (one at a time, each loading and warming up alone until it prints {"ready": true}), then
    gives them `steps` turns each, one timed batch per turn, the order rotating every turn and `pause` seconds of
    quiet before each batch (so no runner's idle threads still spin while another is timed). A slow spell of the
    machine therefore hits all of them alike. Returns each runner's summary JSON (None for one that failed)."""
    procs: dict[str, subprocess.Popen] = {}
    errs = {name: tempfile.TemporaryFile(mode="w+") for name in commands}   # a runner's stderr (a pipe could fill)

    def stderr_tail(name: str) -> str:
        errs[name].seek(0)
        return errs[name].read()[-1500:]

    def fail(name: str, why: str) -> None:
        p = procs.pop(name, None)
        if p:
            p.kill()
            p.wait()
        print(f"{name}: FAILED {why} {stderr_tail(name)}", file=sys.stderr)

    for name, (cmd, env) in commands.items():
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errs[name], text=True,
                             env=env, bufsize=1)
        procs[name] = p
        line = p.stdout.readline()
        if '"ready"' not in line:
            fail(name, f"did not get ready ({p.poll()}): {line.strip()[:200]}")
    names = list(procs)
    for i in range(steps):
        for name in names[i % len(names):] + names[:i % len(names)]:
            p = procs.get(name)
            if p is None:
                continue
            time.sleep(pause)
            try:
                p.stdin.write("go\n")
                p.stdin.flush()
                float(p.stdout.readline())
            except (OSError, ValueError) as e:
                fail(name, f"step {i}: {e}")
    out: dict[str, dict | None] = {name: None for name in commands}
    for name, p in procs.items():
        p.stdin.close()
        rest = p.stdout.read()
        p.wait()
        if p.returncode != 0:
            print(f"{name}: FAILED ({p.returncode}) {stderr_tail(name)}", file=sys.stderr)
            continue
        out[name] = json.loads(rest.strip().splitlines()[-1])
    for f in errs.values():
        f.close()
    return out


def make_model(segment: Path, bench: Path, workdir: Path) -> tuple[Path, str]:
    """A Swin-T model file: through `segment convert` of a segment_torch checkpoint when the converter works, else
    random weights written by segment-bench (latency does not depend on the weight values)."""
    import torch
    from segment_torch import SwinUNet, SwinUNetConfig
    model_path = workdir / "swint.segm"
    ckpt = workdir / "swint.pth"
    torch.manual_seed(0)
    torch.save(SwinUNet(SwinUNetConfig()).state_dict(), ckpt)
    r = subprocess.run([str(segment), "convert", str(ckpt), "-o", str(model_path), "--img-size", "224"],
                       capture_output=True, text=True, env=clean_env())
    if r.returncode == 0 and model_path.exists():
        return model_path, "converted from a segment_torch checkpoint with `segment convert`"
    subprocess.run([str(bench), "make-model", "--out", str(model_path)], check=True, env=clean_env())
    return model_path, "random weights written by segment-bench (`segment convert` was not usable: " + \
        (r.stderr.strip().splitlines() or ["no message"])[-1][:120] + ")"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segment", help="the segment executable (segment-bench must be beside it)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=4, help="timed batches per round at batch 1 (batch 16: half, at least 2)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds: each runner times rounds x iters batches, taking turns with the others one batch "
                         "at a time; median and min are over all of them")
    ap.add_argument("--pause", type=float, default=0.2, help="seconds of quiet before each timed batch")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    ap.add_argument("--threads", default=",".join(map(str, THREADS)), help="comma-separated thread counts")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes")
    ap.add_argument("--precisions", default=",".join(PRECISIONS),
                    help="the engine's precisions to time (bf16 is left out, saying so, on a CPU without bf16 kernels)")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--child", nargs=4, metavar=("FRAMEWORK", "BATCH", "THREADS", "WORKDIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        f, b, t, w = args.child
        b, t = int(b), int(t)
        child(f, b, t, args.warmup, w)
        return

    if not args.segment:
        ap.error("--segment is required")
    segment = Path(args.segment).resolve()
    bench = segment.parent / "segment-bench"
    if not bench.exists():
        raise SystemExit(f"{bench} not found: build it with `swift build -c release --product segment-bench`")
    peers = [p for p in args.peers.split(",") if p]
    threads = [int(t) for t in args.threads.split(",") if t]
    batches = [int(b) for b in args.batches.split(",") if b]
    gflop = swin_t_gflop()
    iters = {1: args.iters, 16: max(2, args.iters // 2)}
    results: dict[tuple[str, int, int], dict] = {}

    with tempfile.TemporaryDirectory(prefix="segment-bench-") as tmp:
        workdir = Path(tmp)
        model_path, model_note = make_model(segment, bench, workdir)
        sgemm = {t: run_measured([str(bench), "sgemm", "--threads", str(t)], clean_env()) for t in threads}
        precisions = [p for p in args.precisions.split(",") if p]
        if "bf16" in precisions and not engine_supports(bench, model_path, "bf16"):
            print("engine-bf16: left out, this CPU has no bf16 kernels (AVX512-BF16 or AMX-BF16)", file=sys.stderr)
            precisions.remove("bf16")
        for b in batches:
            for t in threads:
                commands = {engine_name(p): ([str(bench), "run", "--model", str(model_path), "--threads", str(t), "--batch",
                                              str(b), "--warmup", str(args.warmup), "--lockstep", "--precision", p],
                                             engine_env(t)) for p in precisions}
                for peer in peers:
                    commands[peer] = ([sys.executable, __file__, "--warmup", str(args.warmup),
                                       "--child", peer, str(b), str(t), str(workdir)], clean_env(t))
                for name, r in lockstep(commands, args.rounds * iters[b], args.pause).items():
                    if r is None:
                        continue
                    results[(name, b, t)] = dict(r, rounds=args.rounds)
                    print(f"batch {b} threads {t} {name}: {r['per_slice_ms_median']:.1f} ms/slice median, "
                          f"{r['per_slice_ms_min']:.1f} min", file=sys.stderr)
        model_mb = model_path.stat().st_size / 2**20

    md = render(results, peers, gflop, sgemm, model_mb, model_note, threads=threads, batches=batches)
    print(md)
    if args.out:
        Path(args.out).write_text(md)


def engine_supports(bench: Path, model: Path, precision: str) -> bool:
    """Whether segment-bench runs the engine at `precision` on this CPU (one batch of one slice)."""
    r = subprocess.run([str(bench), "run", "--model", str(model), "--iters", "1", "--warmup", "0", "--precision", precision],
                       capture_output=True, text=True, env=clean_env(1))
    return r.returncode == 0


def render(results, peers, gflop, sgemm, model_mb, model_note, threads=THREADS, batches=BATCHES) -> str:
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
        + ", ".join(f"{t} thread{'s' if t > 1 else ''} {sgemm[t]['gflops']:.0f} GFLOP/s" for t in threads)
        + f" ({sgemm[threads[0]]['openblas_config']}).",
        "",
        f"Per-slice latency in ms (median / min over {max(len(r['per_slice_ms_all']) for r in results.values())} timed "
        "batches per runner at batch 1 and half as many at batch 16; per configuration the engine and its peers are all "
        "loaded and warmed up, then take turns one batch at a time, the order rotating, so a slow spell of this shared VM "
        "hits them alike; its speed drifts by up to 1.5x over minutes, so compare the ratios rather than absolute "
        "times across runs); "
        "the engine runs `predict` "
        "(logits + argmax); peers return logits. Ratio = engine / peer median (< 1: the engine is faster); in "
        "brackets engine / peer minimum, the figure the machine's slow spells move least.",
        "",
        "| batch | threads | engine | GFLOP/s | " + " | ".join(f"{p} | ratio" for p in peers) + " |",
        "|---|---|---|---|" + "---|---|" * len(peers),
    ]
    for b in batches:
        for t in threads:
            e = results.get(("engine", b, t))
            if not e:
                continue
            row = [str(b), str(t), f"{e['per_slice_ms_median']:.1f} / {e['per_slice_ms_min']:.1f}",
                   f"{gflop / (e['per_slice_ms_median'] / 1000):.0f}"]
            for p in peers:
                r = results.get((p, b, t))
                row += [f"{r['per_slice_ms_median']:.1f} / {r['per_slice_ms_min']:.1f}",
                        f"{e['per_slice_ms_median'] / r['per_slice_ms_median']:.2f} "
                        f"({e['per_slice_ms_min'] / r['per_slice_ms_min']:.2f})"] if r else ["failed", "-"]
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Peak RSS (MB) of each runner process (batch 1 = one slice at a time; includes loading the model):", "",
              "| batch | threads | engine | " + " | ".join(peers) + " |", "|---|---|---|" + "---|" * len(peers)]
    for b in batches:
        for t in threads:
            if ("engine", b, t) not in results:
                continue
            row = [str(b), str(t), f"{results[('engine', b, t)]['peak_rss_mb']:.0f}"]
            row += [f"{results[(p, b, t)]['peak_rss_mb']:.0f}" if (p, b, t) in results else "-" for p in peers]
            lines.append("| " + " | ".join(row) + " |")
    chosen = sorted({r["precision"] for (n, _, _), r in results.items() if n == "openvino-default"})
    if chosen:
        lines += ["", f"OpenVINO's default inference precision on this CPU (openvino-default): {', '.join(chosen)}."]
    if any(n == "engine-bf16" for (n, _, _) in results):
        lines += ["", "The engine in bf16 (`--precision bf16`), in the same lockstep runs. Ratio = engine-bf16 / "
                  "runner median (< 1: bf16 is faster); in brackets the same on minima.", "",
                  "| batch | threads | kernels | engine-bf16 | vs engine fp32 | vs " + " | vs ".join(peers) + " |",
                  "|---|---|---|---|---|" + "---|" * len(peers)]
        for b in batches:
            for t in threads:
                e = results.get(("engine-bf16", b, t))
                if not e:
                    continue
                row = [str(b), str(t), e.get("kernels", "?"), f"{e['per_slice_ms_median']:.1f} / {e['per_slice_ms_min']:.1f}"]
                for n in ["engine"] + peers:
                    r = results.get((n, b, t))
                    row.append(f"{e['per_slice_ms_median'] / r['per_slice_ms_median']:.2f} "
                               f"({e['per_slice_ms_min'] / r['per_slice_ms_min']:.2f})" if r else "-")
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
