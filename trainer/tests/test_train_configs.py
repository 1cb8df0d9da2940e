"""The shipped experiment configs: they load, the ablations differ from the full recipe only in their mode, and the
shipped model's slices are exactly segment_data's LiTS-117 split."""
import copy
import dataclasses
import glob
import json
import os

import pytest

from segment_train.config import MODES, ConfigError, TrainConfig, load_config
from segment_train.weights import split_problems

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")


def test_every_config_loads_and_the_ablations_cover_the_modes():
    paths = sorted(glob.glob(os.path.join(CONFIGS, "*.json")))
    cfgs = {os.path.basename(p): load_config(p, data_root="/nonexistent") for p in paths}
    full = cfgs["lits117-advmim.json"]
    assert full.mode == "full" and full.name == "swin-unet-lits-advmim"
    assert {c.mode for c in cfgs.values()} == set(MODES)
    for name, c in cfgs.items():
        a, b = dataclasses.asdict(c), dataclasses.asdict(full)
        for k in ("name", "mode"):
            a.pop(k), b.pop(k)
        assert a == b, name
    assert len({x.name for x in cfgs.values()}) == len(cfgs)


def test_shipped_config_is_the_lits117_split():
    cfg = load_config(os.path.join(CONFIGS, "lits117-advmim.json"), data_root="/nonexistent")
    assert split_problems(cfg) == []
    moved = copy.deepcopy(cfg)
    moved.data.labeled_slices["lits117"][0] += 1
    assert any("labeled_slices" in p for p in split_problems(moved))
    leaky = copy.deepcopy(cfg)
    leaky.data.test_slices["lits117"].remove(100)
    assert any("test block" in p for p in split_problems(leaky))
    val_labeled = copy.deepcopy(cfg)
    val_labeled.data.val_slices["lits117"].append(15)
    assert any("val_slices" in p for p in split_problems(val_labeled))


def test_base_chain(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"base": "b.json", "optim": {"seed": 3}}))
    (tmp_path / "b.json").write_text(json.dumps({"name": "b", "data": {"cases": [{"name": "x", "image": "i",
                                                                                   "label": "l"}]},
                                                 "optim": {"seed": 1, "base_lr": 0.01}}))
    cfg = load_config(str(tmp_path / "a.json"))
    assert (cfg.name, cfg.optim.seed, cfg.optim.base_lr, cfg.optim.iterations) == ("b", 3, 0.01, 30000)
    (tmp_path / "b.json").write_text(json.dumps({"base": "a.json"}))
    with pytest.raises(ConfigError, match="loops"):
        load_config(str(tmp_path / "a.json"))


def test_defaults_are_the_papers():
    cfg = TrainConfig()
    o, L = cfg.optim, cfg.loss
    assert (o.iterations, o.batch_size, o.labeled_batch, o.base_lr, o.momentum, o.weight_decay, o.grad_clip,
            o.seed, o.poly_power) == (30000, 16, 8, 0.05, 0.9, 1e-4, 5.0, 1337, 0.9)
    assert (L.ct_weight, L.adv_weight, L.d_weight, L.mask_ratio, L.mask_block) == (0.1, 0.001, 0.1, 0.7, 32)
    assert (cfg.model.img_size, cfg.model.embed_dim, cfg.model.depths, cfg.model.num_heads) == \
        (224, 96, [2, 2, 2, 2], [3, 6, 12, 24])
    assert cfg.mode == "full" and cfg.augment.rotate and not cfg.augment.rot_flip
