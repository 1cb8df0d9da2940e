"""The trainer's data (slicing, intensity, splits, augmentation) and runs (files written, resume, CLI errors)."""
import json
import os

import nibabel as nib
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from segment_torch import read_key_list, state_layout
from segment_train import train
from segment_train.config import ConfigError, load_config
from segment_train.data import Batches, Dataset, augment, intensity


def test_slices_follow_the_model_convention(make_config):
    """Slice k of case c is NIfTI [:, :, k] (row = axis 0, column = axis 1), windowed to [0, 1]."""
    cfg = load_config(*make_config("full"))
    ds = Dataset(cfg)
    case = cfg.data.cases[1]
    vol = nib.load(case.image).get_fdata(dtype=np.float32)
    lab = np.asarray(nib.load(case.label).dataobj)
    want = (np.clip(vol, -50, 350) + 50) / 400
    assert ds.images[case.name].shape == (vol.shape[2], vol.shape[0], vol.shape[1])
    for k in (0, 7):
        np.testing.assert_allclose(ds.images[case.name][k], want[:, :, k], rtol=0, atol=1e-6)
        assert np.array_equal(ds.labels[case.name][k], lab[:, :, k])


def test_intensity_transforms():
    class P:
        intensity, window_lo, window_hi = "minmax", 0.0, 0.0
    v = np.array([[-10.0, 0.0], [10.0, 30.0]])
    np.testing.assert_allclose(intensity(v, P), (v + 10) / 40)
    P.intensity, P.window_lo, P.window_hi = "window", 0.0, 20.0
    np.testing.assert_allclose(intensity(v, P), [[0, 0], [0.5, 1]])
    P.intensity = "zscore"
    np.testing.assert_allclose(intensity(v, P), (v - v.mean()) / v.std(), rtol=1e-6)


def test_split_is_disjoint_deterministic_and_keeps_the_test_block_out(make_config, tmp_path):
    path, root = make_config("full")
    raw = json.load(open(path))
    raw["data"].update({"labeled_by": "slices", "labeled_slices": {"case0": [0, 1, 2]}, "val_cases": None,
                        "val_slices": {"case1": [4, 5]}, "test_slices": {"case1": [6, 7, 8, 9], "case2": []}})
    p2 = tmp_path / "split.json"
    p2.write_text(json.dumps(raw))
    split = Dataset(load_config(str(p2), root)).split
    L, U, V, T = (set(x) for x in (split.labeled, split.unlabeled, split.val, split.test))
    assert L == {("case0", s) for s in (0, 1, 2)}
    assert V == {("case1", 4), ("case1", 5)}
    assert T == {("case1", s) for s in (6, 7, 8, 9)} | {("case2", s) for s in range(10)}
    assert not (L & U or L & V or L & T or U & V or U & T or V & T)
    assert L | U | V | T == {(c, s) for c in ("case0", "case1", "case2") for s in range(10)}
    # a labeled slice inside the test block is refused, naming it
    raw["data"]["labeled_slices"] = {"case1": [7]}
    p2.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="outside the training data"):
        Dataset(load_config(str(p2), root))
    # a validation slice inside the test block too
    raw["data"]["labeled_slices"] = {"case0": [0]}
    raw["data"]["val_slices"] = {"case1": [6]}
    p2.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="validation and test overlap"):
        Dataset(load_config(str(p2), root))
    # a seeded fraction of the cases is the same every time
    raw["data"].update({"labeled_by": "case", "labeled_cases": None, "labeled_fraction": 0.5, "val_slices": None,
                        "test_slices": None})
    p2.write_text(json.dumps(raw))
    a, b = (Dataset(load_config(str(p2), root)).split for _ in range(2))
    assert a.labeled == b.labeled and len({c for c, _ in a.labeled}) == 2


def test_augmentation_moves_image_and_label_together(make_config):
    cfg = load_config(*make_config("full"))
    lab = np.zeros((40, 36), dtype=np.int64)
    lab[5:20, 8:14] = 1
    img = lab.astype(np.float32) * 0.5
    rng = np.random.default_rng(3)
    angles = set()
    for _ in range(20):
        state = rng.bit_generator.state
        a_img, a_lab = augment(img, lab, cfg, rng)
        assert a_img.shape == img.shape and np.array_equal(a_img, a_lab * 0.5)     # same nearest-neighbour map
        rng2 = np.random.default_rng(); rng2.bit_generator.state = state
        angle = int(rng2.integers(-20, 20))
        assert np.array_equal(a_lab, ndi.rotate(lab, angle, order=0, reshape=False))
        angles.add(angle)
    assert len(angles) > 5 and all(-20 <= a < 20 for a in angles)


def test_batches_have_the_configured_sizes_and_only_their_slices(make_config):
    cfg = load_config(*make_config("full"))
    ds = Dataset(cfg)
    b = Batches(ds, cfg, np.random.default_rng(0))
    x_l, y_l, x_u = b.next()
    assert x_l.shape == (2, 1, 32, 32) and y_l.shape == (2, 32, 32) and x_u.shape == (2, 1, 32, 32)
    assert y_l.dtype == torch.int64 and set(y_l.unique().tolist()) <= {0, 1, 2}
    seen = set(b._take("labeled", 50)) | set(b._take("unlabeled", 50))
    assert {c for c, _ in seen} == {"case0", "case1"}           # never the validation case2


def read_run(out):
    return {name: torch.load(os.path.join(out, name), weights_only=False) for name in os.listdir(out)
            if name.endswith((".pth", ".pt"))}


def test_run_writes_reference_layout_checkpoints_and_resumes_exactly(make_config, tmp_path):
    path, root = make_config("full")
    cfg = load_config(path, root)
    straight = str(tmp_path / "straight")
    summary = train.run(cfg, straight, quiet=True)
    files = read_run(straight)
    assert {"iter_2.pth", "iter_4.pth", "model2_iter_2.pth", "model2_iter_4.pth", "best.pth", "state_last.pt",
            "state_iter_2.pt", "state_iter_4.pt"} <= set(files)
    from segment_torch import MiMSwinUNet, MiMUNet
    assert state_layout(files["iter_4.pth"]) == state_layout(MiMSwinUNet(cfg.model).state_dict())
    assert state_layout(files["model2_iter_4.pth"]) == state_layout(MiMUNet(1, 3).state_dict())
    assert summary["best"]["iteration"] in (2, 4)
    log = [json.loads(line) for line in open(os.path.join(straight, "log.jsonl"))]
    assert [r["iteration"] for r in log] == [2, 4] and all("val" in r for r in log)

    # resume from the state saved at iteration 2 (as after a killed run): the same weights at 4, bit for bit
    resumed_out = str(tmp_path / "resumed")
    train.run(load_config(path, root), resumed_out, resume=os.path.join(straight, "iter_2.pth"), quiet=True)
    resumed = read_run(resumed_out)
    assert "iter_2.pth" not in resumed                        # it really started at iteration 3
    for name in ("iter_4.pth", "model2_iter_4.pth"):
        for k, v in files[name].items():
            assert torch.equal(v, resumed[name][k]), (name, k)
    d_a, d_b = files["state_iter_4.pt"]["trainer"]["nets"], resumed["state_iter_4.pt"]["trainer"]["nets"]
    for net in ("Ds", "Dc"):
        for k, v in d_a[net].items():
            assert torch.equal(v, d_b[net][k]), (net, k)


def test_resume_refuses_a_different_configuration(make_config, tmp_path):
    path, root = make_config("+ct")
    cfg = load_config(path, root)
    cfg.optim.iterations = 1
    out = str(tmp_path / "run")
    train.run(cfg, out, quiet=True)
    other = load_config(path, root)
    other.optim.base_lr = 0.01
    with pytest.raises(train.TrainingError, match="different configuration"):
        train.run(other, out, resume=out, quiet=True)
    with pytest.raises(train.TrainingError, match="does not exist"):
        train.run(load_config(path, root), out, resume=os.path.join(out, "iter_99.pth"), quiet=True)


def test_config_errors_name_the_key(tmp_path, make_config, capsys):
    path, root = make_config("full")
    raw = json.load(open(path))
    raw["optim"]["learning_rate"] = 0.1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    assert train.main(["--config", str(bad), "--data-root", root, "--out", str(tmp_path / "o")]) == 2
    assert "learning_rate" in capsys.readouterr().err
    raw["optim"].pop("learning_rate")
    raw["mode"] = "+everything"
    bad.write_text(json.dumps(raw))
    assert train.main(["--config", str(bad), "--data-root", root]) == 2
    assert "+everything" in capsys.readouterr().err


def test_convert_command_carries_preprocessing_and_provenance(make_config):
    cfg = load_config(*make_config("full"))
    ds = Dataset(cfg)
    prov = train.provenance_of(cfg, ds, {"dice": 0.5, "iteration": 4}, 4)
    argv = train.convert_command("/bin/segment", "best.pth", "m.segm", cfg, prov)
    assert argv[:6] == ["/bin/segment", "convert", "best.pth", "-o", "m.segm", "--overwrite"]
    pairs = dict(zip(argv[6::2], argv[7::2]))
    assert pairs["--classes"] == "background,ring,core" and pairs["--intensity"] == "window"
    assert pairs["--window-range"] == "-50,350" and pairs["--img-size"] == "32"
    assert (pairs["--depths"], pairs["--heads"], pairs["--window"], pairs["--row-axis"]) == ("2,2", "1,2", "4", "0")
    provs = dict(v.split("=", 1) for k, v in zip(argv[6::2], argv[7::2]) if k == "--provenance")
    assert provs["seed"] == "7" and provs["iterations"] == "4" and provs["val_dice"] == "0.5000"
    assert json.loads(provs["split_counts"]) == {"labeled": 10, "unlabeled": 10, "val": 10, "test_excluded": 0}


def test_png_pairs_rgb_and_binary_masks(tmp_path):
    """ISIC-like RGB images with 0/255 masks: masks become {0, 1}, images (R, Cw, 3) min-max scaled per image, and
    both branches see 3 channels."""
    from PIL import Image
    from segment_train.advmim import AdvMIM
    rng = np.random.default_rng(0)
    cases = []
    for i in range(4):
        img = rng.integers(0, 200, (30, 40, 3), dtype=np.uint8)
        mask = np.zeros((30, 40), dtype=np.uint8)
        mask[8:20, 10:25 + i] = 255
        img[mask > 0] += 55
        Image.fromarray(img).save(tmp_path / f"ISIC_{i}.png")
        Image.fromarray(mask).save(tmp_path / f"ISIC_{i}_segmentation.png")
        cases.append({"name": f"ISIC_{i}", "image": f"ISIC_{i}.png", "label": f"ISIC_{i}_segmentation.png"})
    raw = {"name": "isic", "mode": "full",
           "model": {"img_size": 32, "patch_size": 2, "num_classes": 2, "embed_dim": 8, "depths": [2, 2],
                     "num_heads": [1, 2], "window_size": 4},
           "preprocessing": {"channels": "rgb", "intensity": "minmax"},
           "data": {"format": "png", "cases": cases, "labeled_fraction": 0.5, "val_cases": ["ISIC_3"]},
           "optim": {"batch_size": 4, "labeled_batch": 2}, "loss": {"mask_block": 8}}
    (tmp_path / "isic.json").write_text(json.dumps(raw))
    cfg = load_config(str(tmp_path / "isic.json"), data_root=str(tmp_path))
    ds = Dataset(cfg)
    img = np.asarray(Image.open(tmp_path / "ISIC_1.png")).astype(np.float32)
    np.testing.assert_allclose(ds.images["ISIC_1"][0], (img - img.min()) / (img.max() - img.min()), atol=1e-6)
    assert ds.images["ISIC_1"].shape == (1, 30, 40, 3)
    assert set(np.unique(ds.labels["ISIC_1"])) == {0, 1} and ds.labels["ISIC_1"].sum() == 12 * 16
    assert len({c for c, _ in ds.split.labeled}) == 2 and ("ISIC_3", 0) in ds.split.val
    x_l, y_l, x_u = Batches(ds, cfg, np.random.default_rng(0)).next()
    assert x_l.shape == (2, 3, 32, 32) and x_u.shape == (2, 3, 32, 32) and y_l.shape == (2, 32, 32)
    out = AdvMIM(cfg).step(0, x_l, y_l, x_u, np.random.default_rng(0))
    assert all(np.isfinite(v) for v in out.values())
