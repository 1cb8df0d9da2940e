"""AdvMIM training from a JSON config, with validation-based model selection, resumable state and the final
conversion to a `segment` model file.

    python -m segment_train.train --config trainer/configs/X.json [--resume RUN/state_last.pt] [--out DIR]
        [--data-root DIR] [--segment .build/release/segment] [--iterations N]

Writes into --out (default out/train/NAME):
    iter_N.pth, model2_iter_N.pth   S (AdvMIM wrapper layout) and C state_dicts every schedule.save_every and at the end
    best.pth, best.json             S with the best validation Dice (validation slices come from the training data)
    state_iter_N.pt, state_last.pt  everything --resume needs (networks, optimisers, RNG and sampler states)
    log.jsonl                       mean loss terms, lr, validation Dice and seconds per iteration, per validation
    run.json                        config, split, best iteration and timing
    NAME.segm                       `segment convert best.pth` (when --segment is given), with provenance
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from tqdm import tqdm

from .advmim import AdvMIM
from .config import ConfigError, TrainConfig, load_config
from .data import Batches, DataError, Dataset, resize, to_tensor


class TrainingError(RuntimeError):
    pass


def atomic_write(path: str, write) -> None:
    """Calls write(tmp) on a temporary file in path's folder, then renames it over path: a killed run never leaves
    half a file, and a failed write leaves no temporary file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # The name keeps an extension: torch.save refuses a dot-file name without one ("invalid file name").
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; the result gets a normal file's permissions
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def atomic_torch_save(obj, path: str):
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_text(text: str, path: str):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


# ---------------------------------------------------------------------------------------------------------------
# Validation

@torch.no_grad()
def predict_slices(S, images: np.ndarray, cfg: TrainConfig, batch: int = 8) -> np.ndarray:
    """images (S_, R, Cw[, 3]) in the model's intensity scale -> label maps (S_, R, Cw), each slice resized to the
    model grid (image order), run, argmax, and resized back with order 0 (as the tool does)."""
    S.eval()
    size, order = cfg.model.img_size, cfg.preprocessing.image_order
    out = []
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        x = to_tensor([resize(im, size, size, order) for im in chunk])
        pred = S(x).argmax(1).numpy()                                       # (b, size, size)
        out += [resize(p, chunk.shape[1], chunk.shape[2], 0) for p in pred]
    return np.stack(out)


def dice_per_class(pred: np.ndarray, ref: np.ndarray, nc: int) -> list[float]:
    """Dice of classes 1..nc-1 on the whole stack; NaN when both are empty (the project's policy)."""
    out = []
    for c in range(1, nc):
        a, b = pred == c, ref == c
        denom = a.sum() + b.sum()
        out.append(float("nan") if denom == 0 else float(2.0 * (a & b).sum() / denom))
    return out


def validate(S, ds: Dataset, cfg: TrainConfig) -> dict:
    """Mean foreground Dice over validation cases (each case's validation slices scored as one stack); classes
    empty in both prediction and reference are left out of the means."""
    by_case: dict[str, list[int]] = {}
    for name, s in ds.split.val:
        by_case.setdefault(name, []).append(s)
    per_case = {}
    for name, slices in by_case.items():
        pred = predict_slices(S, ds.images[name][slices], cfg)
        per_case[name] = dice_per_class(pred, ds.labels[name][slices], cfg.model.num_classes)
    per_class = np.nanmean(np.array(list(per_case.values())), axis=0) if per_case else np.array([])
    mean = float(np.nanmean(per_class)) if np.isfinite(per_class).any() else 0.0
    return {"dice": mean, "per_class": [None if math.isnan(v) else v for v in per_class.tolist()],
            "per_case": {k: [None if math.isnan(v) else v for v in vs] for k, vs in per_case.items()}}


# ---------------------------------------------------------------------------------------------------------------
# Conversion

def convert_command(segment: str, checkpoint: str, out_model: str, cfg: TrainConfig, provenance: dict) -> list[str]:
    """`segment convert` with the model's configuration (confirmed against the checkpoint), class names,
    preprocessing and provenance; it replaces an earlier model file of the same run."""
    pp, m = cfg.preprocessing, cfg.model
    argv = [segment, "convert", checkpoint, "-o", out_model, "--overwrite",
            "--classes", ",".join(cfg.class_names()),
            "--img-size", str(m.img_size), "--embed-dim", str(m.embed_dim),
            "--depths", ",".join(map(str, m.depths)), "--heads", ",".join(map(str, m.num_heads)),
            "--window", str(m.window_size), "--num-classes", str(m.num_classes), "--in-chans", str(m.in_chans),
            "--channels", pp.channels, "--intensity", pp.intensity,
            "--slice-axis", str(pp.slice_axis), "--row-axis", str(pp.row_axis), "--col-axis", str(pp.col_axis),
            "--image-order", str(pp.image_order), "--label-order", str(pp.label_order)]
    if pp.intensity == "window":
        argv += ["--window-range", f"{pp.window_lo:g},{pp.window_hi:g}"]
    for k, v in provenance.items():
        argv += ["--provenance", f"{k}={v}"]
    for code in cfg.class_codes:
        argv += ["--class-code", code]
    return argv


def provenance_of(cfg: TrainConfig, ds: Dataset, best: dict, iterations: int) -> dict[str, str]:
    s = ds.split.summary()
    cases = ";".join(f"{c.name}={os.path.basename(c.image)}" for c in cfg.data.cases)
    o, L = cfg.optim, cfg.loss
    prov = {
        "data": cases,
        "split": json.dumps({k: s[k] for k in ("labeled", "val", "test_excluded")}, separators=(",", ":")),
        "split_counts": json.dumps(s["counts"], separators=(",", ":")),
        "recipe": (f"AdvMIM mode={cfg.mode} batch={o.batch_size}({o.labeled_batch} labeled) lr={o.base_lr} poly"
                   f"{o.poly_power} sgd-momentum={o.momentum} wd={o.weight_decay} clip={o.grad_clip} "
                   f"drop_path={o.drop_path_rate} ct={L.ct_weight} adv={L.adv_weight} d={L.d_weight} "
                   f"mask={L.mask_ratio}@{L.mask_block}px no-pretraining"),
        "seed": str(o.seed),
        "iterations": str(iterations),
        "selected_iteration": str(best.get("iteration")),
        "val_dice": "" if best.get("dice") is None else f"{best['dice']:.4f}",
        "trainer": "segment_train (trainer/segment_train)",
    }
    prov.update(cfg.provenance)
    return prov


# ---------------------------------------------------------------------------------------------------------------
# The run

def _state_path_for(resume: str) -> str:
    """--resume accepts a state file, a run folder (its state_last.pt) or an iter_N.pth (its state_iter_N.pt)."""
    if os.path.isdir(resume):
        return os.path.join(resume, "state_last.pt")
    base = os.path.basename(resume)
    if base.startswith("iter_") and base.endswith(".pth"):
        return os.path.join(os.path.dirname(resume), "state_" + base[:-4] + ".pt")
    return resume


def _comparable(cfg_json: dict) -> dict:
    """The parts of a config that must not change across a resume (everything but the schedule and iterations)."""
    c = json.loads(json.dumps(cfg_json))
    c.pop("schedule", None)
    c["optim"].pop("iterations", None)
    c["optim"].pop("threads", None)
    return c


def run(cfg: TrainConfig, out: str, resume: str | None = None, segment: str | None = None,
        quiet: bool = False) -> dict:
    o, sch = cfg.optim, cfg.schedule
    os.makedirs(out, exist_ok=True)
    if o.threads > 0:
        torch.set_num_threads(o.threads)
    ds = Dataset(cfg)
    rng = np.random.default_rng(o.seed)
    batches = Batches(ds, cfg, rng)
    trainer = AdvMIM(cfg)
    start, best, log_acc = 0, {"dice": None, "iteration": None}, {}
    if resume:
        path = _state_path_for(resume)
        if not os.path.exists(path):
            raise TrainingError(f"cannot resume: {path} does not exist (pass a state_*.pt, a run folder or an "
                                "iter_N.pth that has its state_iter_N.pt beside it)")
        state = torch.load(path, weights_only=False)
        if _comparable(state["config"]) != _comparable(cfg.to_json()):
            raise TrainingError(f"cannot resume from {path}: it was trained with a different configuration "
                                "(only schedule and optim.iterations may change)")
        trainer.restore(state["trainer"])
        batches.restore(state["batches"])
        torch.set_rng_state(state["torch_rng"])
        start, best = state["iteration"], state["best"]
    atomic_write_text(json.dumps({"config": cfg.to_json(), "split": ds.split.summary()}, indent=1), os.path.join(out, "run.json"))

    def save_state(n: int):
        state = {"iteration": n, "config": cfg.to_json(), "trainer": trainer.state(), "batches": batches.state(),
                 "torch_rng": torch.get_rng_state(), "best": best}
        atomic_torch_save(state, os.path.join(out, "state_last.pt"))
        if n % sch.save_every == 0 or n == o.iterations:
            atomic_torch_save(state, os.path.join(out, f"state_iter_{n}.pt"))

    # A live bar on a terminal; elsewhere (logs, make) one status line per validation instead.
    live = not quiet and sys.stderr.isatty()
    bar = tqdm(range(start, o.iterations), initial=start, total=o.iterations, file=sys.stderr, disable=not live,
               dynamic_ncols=True, desc=cfg.name)
    t0, n_timed = time.perf_counter(), 0
    for it in bar:
        x_l, y_l, x_u = batches.next()
        terms = trainer.step(it, x_l, y_l, x_u, rng)
        bad = [k for k, v in terms.items() if not math.isfinite(v)]
        if bad:
            raise TrainingError(f"iteration {it + 1}: loss term(s) {', '.join(bad)} are not finite; lower "
                                "optim.base_lr or check the data (the last state is in " + out + ")")
        for k, v in terms.items():
            log_acc[k] = log_acc.get(k, 0.0) + v
        n_timed += 1
        bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items() if k != "lr"}, refresh=False)
        n = it + 1
        if n % sch.val_every == 0 or n == o.iterations:
            record = {"iteration": n, "seconds_per_iteration": (time.perf_counter() - t0) / n_timed,
                      **{k: v / n_timed for k, v in log_acc.items()}}
            if ds.split.val:
                v = validate(trainer.S, ds, cfg)
                record["val"] = v
                if best["dice"] is None or v["dice"] > best["dice"]:
                    best = {"dice": v["dice"], "iteration": n, "per_class": v["per_class"]}
                    atomic_torch_save(trainer.S.state_dict(), os.path.join(out, "best.pth"))
                    atomic_write_text(json.dumps(best, indent=1), os.path.join(out, "best.json"))
            with open(os.path.join(out, "log.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
            if not live and not quiet:
                val = f" val_dice={record['val']['dice']:.4f}" if "val" in record else ""
                print(f"{cfg.name} iteration {n}/{o.iterations} loss={record['loss']:.4f}{val} "
                      f"{record['seconds_per_iteration']:.2f} s/it", file=sys.stderr, flush=True)
            log_acc, n_timed, t0 = {}, 0, time.perf_counter()
        if n % sch.save_every == 0 or n == o.iterations:
            atomic_torch_save(trainer.S.state_dict(), os.path.join(out, f"iter_{n}.pth"))
            if trainer.C is not None:
                atomic_torch_save(trainer.C.state_dict(), os.path.join(out, f"model2_iter_{n}.pth"))
        if n % sch.state_every == 0 or n % sch.save_every == 0 or n == o.iterations:
            save_state(n)
    bar.close()

    if not ds.split.val:          # no validation split: the last iteration is the model
        best = {"dice": None, "iteration": o.iterations}
        atomic_torch_save(trainer.S.state_dict(), os.path.join(out, "best.pth"))
    summary = {"config": cfg.to_json(), "split": ds.split.summary(), "best": best}
    if segment:
        model_path = os.path.join(out, f"{cfg.name}.segm")
        argv = convert_command(segment, os.path.join(out, "best.pth"), model_path, cfg,
                               provenance_of(cfg, ds, best, o.iterations))
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TrainingError(f"`{' '.join(argv[:4])} ...` failed (exit {proc.returncode}): {proc.stderr.strip()}")
        summary["model"] = model_path
        summary["convert"] = argv
    atomic_write_text(json.dumps(summary, indent=1), os.path.join(out, "run.json"))
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m segment_train.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="experiment JSON (trainer/configs/*.json)")
    ap.add_argument("--resume", help="state_*.pt, a run folder, or iter_N.pth with its state_iter_N.pt beside it")
    ap.add_argument("--out", help="run folder (default out/train/NAME)")
    ap.add_argument("--data-root", help="folder relative case paths start from (default $SEGMENT_DATA, else the "
                                        "config's folder)")
    ap.add_argument("--segment", help="the segment executable; when given, best.pth is converted to NAME.segm")
    ap.add_argument("--iterations", type=int, help="override optim.iterations (short runs, smoke tests)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config, a.data_root)
        if a.iterations:
            cfg.optim.iterations = a.iterations
        summary = run(cfg, a.out or os.path.join("out", "train", cfg.name), a.resume, a.segment, a.quiet)
    except (ConfigError, DataError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 3
    best = summary["best"]
    print(f"done: best validation Dice {best['dice']} at iteration {best['iteration']}"
          + (f"; model file {summary['model']}" if "model" in summary else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
