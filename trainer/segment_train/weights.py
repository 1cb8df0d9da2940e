"""`make weights`: train the shipped default model on LiTS-117 with AdvMIM and convert it.

    python -m segment_train.weights --cache ~/.cache/segment-data --segment .build/release/segment
        [--config trainer/configs/lits117-advmim.json] [--out out/weights] [--model models/swin-unet-lits-advmim.segm]
        [--resume] [--iterations N]

Checks that the data are the ones `make data` made (manifest sha256) and that the config's slices are exactly
segment_data.lits117_split()'s (train block, labeled slices, test block and gap held out, validation inside the
unlabeled training slices), trains, converts best.pth with provenance, and installs the model file atomically.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from segment_data import DataError as FetchedDataError
from segment_data import lits117_split, load_lits117

from . import train
from .config import ConfigError, TrainConfig, load_config

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "..", "configs", "lits117-advmim.json")


def split_problems(cfg: TrainConfig) -> list[str]:
    """How the config's slice lists differ from segment_data.lits117_split() (empty when they agree)."""
    s, d = lits117_split(), cfg.data
    p = []
    if [c.name for c in d.cases] != ["lits117"]:
        return [f"data.cases must be the one case lits117, not {[c.name for c in d.cases]}"]
    case = d.cases[0]
    if case.slices is None or sorted(case.slices) != list(s.train):
        p.append(f"data.cases[0].slices must be the training block {s.train[0]}..{s.train[-1]}")
    if d.labeled_by != "slices" or sorted((d.labeled_slices or {}).get("lits117", [])) != list(s.labeled):
        p.append(f"data.labeled_slices must be lits117: {list(s.labeled)}")
    held_out = set((d.test_slices or {}).get("lits117", []))
    if not set(s.test) | set(s.gap) <= held_out:
        p.append(f"data.test_slices must hold the test block {s.test[0]}..{s.test[-1]} and the gap "
                 f"{s.gap[0]}..{s.gap[-1]}")
    val = set((d.val_slices or {}).get("lits117", []))
    if not val or not val <= set(s.unlabeled):
        p.append("data.val_slices must be a non-empty subset of the unlabeled training slices")
    return p


def install(src: str, dst: str):
    """Copy src to dst through a temporary file in dst's folder and a rename."""
    train.atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m segment_train.weights", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, help="the data cache `make data` filled")
    ap.add_argument("--segment", required=True, help="the segment executable (for `segment convert`)")
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--out", default=os.path.join("out", "weights"), help="run folder (checkpoints, logs)")
    ap.add_argument("--model", default=os.path.join("models", "swin-unet-lits-advmim.segm"),
                    help="where the model file is installed")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last saved state")
    ap.add_argument("--iterations", type=int, help="override optim.iterations")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    cache = os.path.abspath(os.path.expanduser(a.cache))
    try:
        load_lits117(cache)                     # verifies the files against the manifest
        cfg = load_config(a.config, data_root=cache)
        if a.iterations:
            cfg.optim.iterations = a.iterations
        bad = split_problems(cfg)
        if bad:
            raise ConfigError(f"{a.config} does not hold the LiTS-117 split of segment_data: " + "; ".join(bad))
        resume = a.out if a.resume else None
        summary = train.run(cfg, a.out, resume=resume, segment=os.path.abspath(a.segment), quiet=a.quiet)
        install(summary["model"], a.model)
    except (ConfigError, FetchedDataError, train.TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 3
    best = summary["best"]
    print(f"installed {a.model} (iteration {best['iteration']}, validation Dice {best['dice']}); "
          f"run folder {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
