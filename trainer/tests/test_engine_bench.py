"""bench/engine_bench.py: the lockstep driver (turns, failures, summaries) and the FLOP count the tables quote."""
import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "engine_bench.py"
spec = importlib.util.spec_from_file_location("engine_bench", BENCH)
engine_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(engine_bench)

# A runner speaking the lockstep protocol: ready, one line per step (its step number, as "ms"), then a summary.
RUNNER = r"""
import json, sys
name = sys.argv[1]
print(json.dumps({"ready": True}), flush=True)
steps = []
for line in sys.stdin:
    steps.append(float(len(steps) + 1))
    with open(sys.argv[2], "a") as log:
        log.write(name + "\n")
    print(steps[-1], flush=True)
print(json.dumps({"name": name, "per_slice_ms_all": steps, "per_slice_ms_median": steps[len(steps) // 2],
                  "per_slice_ms_min": min(steps), "peak_rss_mb": 1.0}))
"""


def test_lockstep_takes_turns_rotating_and_collects_summaries(tmp_path):
    log = tmp_path / "order.txt"
    commands = {n: ([sys.executable, "-c", RUNNER, n, str(log)], None) for n in ("a", "b", "c")}
    out = engine_bench.lockstep(commands, steps=4, pause=0)
    assert {n: r["per_slice_ms_all"] for n, r in out.items()} == {n: [1.0, 2.0, 3.0, 4.0] for n in "abc"}
    order = log.read_text().split()
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]   # the first runner rotates


def test_lockstep_reports_a_runner_that_never_gets_ready_and_times_the_others(tmp_path, capsys):
    log = tmp_path / "order.txt"
    commands = {"good": ([sys.executable, "-c", RUNNER, "good", str(log)], None),
                "bad": ([sys.executable, "-c", "import sys; sys.exit('no model here')"], None)}
    out = engine_bench.lockstep(commands, steps=2, pause=0)
    assert out["bad"] is None and out["good"]["per_slice_ms_all"] == [1.0, 2.0]
    err = capsys.readouterr().err
    assert "bad: FAILED" in err and "no model here" in err


def test_lockstep_reports_a_runner_that_dies_mid_run(tmp_path, capsys):
    dies = r"""
import json, sys
print(json.dumps({"ready": True}), flush=True)
sys.stdin.readline()
sys.exit(3)
"""
    log = tmp_path / "order.txt"
    commands = {"good": ([sys.executable, "-c", RUNNER, "good", str(log)], None),
                "dies": ([sys.executable, "-c", dies], None)}
    out = engine_bench.lockstep(commands, steps=3, pause=0)
    assert out["dies"] is None and out["good"]["per_slice_ms_all"] == [1.0, 2.0, 3.0]
    assert "dies: FAILED" in capsys.readouterr().err


def test_swin_t_flop_count_matches_pytorchs_counter():
    """The tables' GFLOP per slice (and GFLOP/s) against torch's own FLOP counter over the reference forward."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from segment_torch import SwinUNet, SwinUNetConfig

    model = SwinUNet(SwinUNetConfig()).eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, 224, 224))
    assert abs(engine_bench.swin_t_gflop() - counter.get_total_flops() / 1e9) < 1e-3


def test_render_names_openvinos_precision_and_the_bf16_ratios():
    """The bf16 table: engine-bf16's kernels and its median (min) ratio to each runner of the same configuration,
    computed from the summaries; OpenVINO's default precision as its runner reported it."""
    def summary(median, low, **extra):
        return dict({"per_slice_ms_median": median, "per_slice_ms_min": low, "per_slice_ms_all": [low, median],
                     "peak_rss_mb": 100.0, "load_seconds": 0.1, "open_seconds": 0.01}, **extra)
    results = {("engine", 1, 2): summary(50.0, 40.0), ("engine-bf16", 1, 2): summary(40.0, 30.0, kernels="avx512-bf16"),
               ("openvino-default", 1, 2): summary(80.0, 60.0, precision="bfloat16"),
               ("pytorch-bf16", 1, 2): summary(100.0, 75.0, precision="bf16 (torch.autocast)")}
    sgemm = {2: {"gflops": 100.0, "openblas_config": "test"}}
    md = engine_bench.render(results, ["pytorch-bf16", "openvino-default"], 12.22, sgemm, 105.0, "test",
                             threads=[2], batches=[1])
    assert "OpenVINO's default inference precision on this CPU (openvino-default): bfloat16." in md
    row = next(l for l in md.splitlines() if l.startswith("| 1 | 2 | avx512-bf16 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # engine-bf16 40 / 30 against engine 50 / 40, pytorch-bf16 100 / 75, openvino-default 80 / 60
    assert cells[3:] == ["40.0 / 30.0", "0.80 (0.75)", "0.40 (0.40)", "0.50 (0.50)"]
