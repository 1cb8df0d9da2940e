"""State-dict layouts of the reference networks against the public checkpoints' key lists
(segment_torch/checkpoint_keys/*.txt, copied from the project's reference notes), and the model-file tensor set
against a list derived here from the configuration."""
import numpy as np
import pytest
import torch

from segment_torch import (MiMSwinUNet, MiMUNet, SwinUNet, SwinUNetConfig, advmim_state_dict, engine_tensors,
                         plain_state_dict, read_key_list, state_layout)

SMALL = SwinUNetConfig(img_size=48, patch_size=4, in_chans=3, num_classes=3, embed_dim=12, depths=[2, 2, 1],
                       num_heads=[1, 2, 4], window_size=6)   # stage grids 12 / 6 / 3: one shifted stage, two shrunk


@pytest.fixture(scope="module")
def swin_t():
    torch.manual_seed(0)
    return SwinUNet(SwinUNetConfig(num_classes=4)).eval()


def test_plain_swin_unet_layout_equals_checkpoint(swin_t):
    expected = read_key_list("swin-unet-plain-nc4.txt")
    assert len(expected) == 238
    assert state_layout(swin_t.state_dict()) == expected


def test_advmim_swin_unet_layout_equals_checkpoint():
    expected = read_key_list("advmim-mim-swin-unet-nc4.txt")
    assert state_layout(MiMSwinUNet(SwinUNetConfig(num_classes=4)).state_dict()) == expected


def test_advmim_unet_layout_equals_checkpoint():
    expected = read_key_list("advmim-mim-unet-nc4.txt")
    assert state_layout(MiMUNet(in_chns=1, num_classes=4).state_dict()) == expected


def test_advmim_state_dict_wraps_the_given_model(swin_t):
    sd = advmim_state_dict(swin_t)
    assert state_layout(sd) == read_key_list("advmim-mim-swin-unet-nc4.txt")
    plain = plain_state_dict(sd)
    assert list(plain) == list(swin_t.state_dict())
    for k, v in swin_t.state_dict().items():
        assert torch.equal(plain[k], v), k


# ----- relative_position_index and attn_mask, written here from their definitions (swin-unet.md)

def index_by_definition(ws):
    """index[i, j] = (yi - yj + ws - 1) * (2 ws - 1) + (xi - xj + ws - 1), tokens row-major in the window."""
    N = ws * ws
    idx = np.zeros((N, N), dtype=np.int64)
    for i in range(N):
        for j in range(N):
            (yi, xi), (yj, xj) = divmod(i, ws), divmod(j, ws)
            idx[i, j] = (yi - yj + ws - 1) * (2 * ws - 1) + (xi - xj + ws - 1)
    return idx


def mask_by_definition(res, ws, shift):
    """mask[w, i, j] = -100 when tokens i, j of window w (of the image rolled by -shift) come from different
    regions; the regions cut each axis at res - ws and res - shift."""
    def region(c):
        return 0 if c < res - ws else (1 if c < res - shift else 2)
    nw = res // ws
    mask = np.zeros((nw * nw, ws * ws, ws * ws), dtype=np.float32)
    for w in range(nw * nw):
        wy, wx = divmod(w, nw)
        labels = []
        for t in range(ws * ws):
            ty, tx = divmod(t, ws)
            labels.append(3 * region(wy * ws + ty) + region(wx * ws + tx))
        for i in range(ws * ws):
            for j in range(ws * ws):
                if labels[i] != labels[j]:
                    mask[w, i, j] = -100.0
    return mask


def all_blocks(model):
    net = model.swin_unet
    stages = [(f"layers.{i}", layer) for i, layer in enumerate(net.layers)]
    stages += [(f"layers_up.{k}", layer) for k, layer in enumerate(net.layers_up) if k > 0]
    return [(f"{name}.blocks.{j}", blk) for name, layer in stages for j, blk in enumerate(layer.blocks)]


@pytest.mark.parametrize("cfg", [SwinUNetConfig(num_classes=4), SMALL], ids=["swin-t", "small"])
def test_geometry_buffers_equal_their_definitions(cfg):
    model = SwinUNet(cfg)
    L = cfg.num_layers
    expected_res = {f"layers.{i}": cfg.patches_resolution >> i for i in range(L)}
    expected_res.update({f"layers_up.{k}": cfg.patches_resolution >> (L - 1 - k) for k in range(1, L)})
    masked = 0
    for name, blk in all_blocks(model):
        res = expected_res[name.rsplit(".blocks.", 1)[0]]
        ws = min(res, cfg.window_size)
        odd = int(name.rsplit(".", 1)[1]) % 2 == 1
        shift = cfg.window_size // 2 if odd and res > cfg.window_size else 0
        assert np.array_equal(blk.attn.relative_position_index.numpy(), index_by_definition(ws)), name
        assert blk.attn.relative_position_bias_table.shape == ((2 * ws - 1) ** 2, blk.attn.heads), name
        if shift == 0:
            assert blk.attn_mask is None, name
        else:
            masked += 1
            assert np.array_equal(blk.attn_mask.numpy(), mask_by_definition(res, ws, shift)), name
    assert masked == (6 if cfg.num_layers == 4 else 2)   # odd blocks of the 56/28/14 (12) stages, encoder + decoder


# ----- the model-file tensor set

def spec_by_config(cfg):
    """[(name, shape)] as SwinUNetSpec.swift defines it, derived from the configuration."""
    E, P, L, nc = cfg.embed_dim, cfg.patch_size, cfg.num_layers, cfg.num_classes
    names = {}
    names["patch_embed.proj.weight"] = (E, cfg.in_chans, P, P)
    names["patch_embed.proj.bias"] = (E,)
    names["patch_embed.norm.weight"] = names["patch_embed.norm.bias"] = (E,)

    def blocks(prefix, i):
        C, heads, res = E * 2 ** i, cfg.num_heads[i], cfg.patches_resolution // 2 ** i
        N = min(res, cfg.window_size) ** 2
        hid = int(C * cfg.mlp_ratio)
        for j in range(cfg.depths[i]):
            p = f"{prefix}.blocks.{j}."
            for n, s in [("norm1.weight", (C,)), ("norm1.bias", (C,)), ("attn.relative_position_bias", (heads, N, N)),
                         ("attn.qkv.weight", (3 * C, C)), ("attn.qkv.bias", (3 * C,)), ("attn.proj.weight", (C, C)),
                         ("attn.proj.bias", (C,)), ("norm2.weight", (C,)), ("norm2.bias", (C,)),
                         ("mlp.fc1.weight", (hid, C)), ("mlp.fc1.bias", (hid,)), ("mlp.fc2.weight", (C, hid)),
                         ("mlp.fc2.bias", (C,))]:
                names[p + n] = s
    for i in range(L):
        blocks(f"layers.{i}", i)
        if i < L - 1:
            C = E * 2 ** i
            names[f"layers.{i}.downsample.reduction.weight"] = (2 * C, 4 * C)
            names[f"layers.{i}.downsample.norm.weight"] = names[f"layers.{i}.downsample.norm.bias"] = (4 * C,)
    Cb = E * 2 ** (L - 1)
    names["norm.weight"] = names["norm.bias"] = (Cb,)
    names["layers_up.0.expand.weight"] = (2 * Cb, Cb)
    names["layers_up.0.norm.weight"] = names["layers_up.0.norm.bias"] = (Cb // 2,)
    for k in range(1, L):
        i = L - 1 - k
        C = E * 2 ** i
        blocks(f"layers_up.{k}", i)
        if k < L - 1:
            names[f"layers_up.{k}.upsample.expand.weight"] = (2 * C, C)
            names[f"layers_up.{k}.upsample.norm.weight"] = names[f"layers_up.{k}.upsample.norm.bias"] = (C // 2,)
        names[f"concat_back_dim.{k}.weight"] = (C, 2 * C)
        names[f"concat_back_dim.{k}.bias"] = (C,)
    names["norm_up.weight"] = names["norm_up.bias"] = (E,)
    names["up.expand.weight"] = (P * P * E, E)
    names["up.norm.weight"] = names["up.norm.bias"] = (E,)
    names["output.weight"] = (nc, E, 1, 1)
    return names


@pytest.mark.parametrize("cfg", [SwinUNetConfig(), SMALL], ids=["swin-t", "small"])
def test_engine_tensors_are_the_spec_set(cfg):
    torch.manual_seed(1)
    tensors = engine_tensors(SwinUNet(cfg))
    expected = spec_by_config(cfg)
    assert sorted(tensors) == sorted(expected)
    for name, a in tensors.items():
        assert a.shape == expected[name], name
        assert a.dtype == np.float32 and a.flags.c_contiguous, name
    if cfg.num_layers == 4:
        assert len(tensors) == 238 - 14 - 6   # plain checkpoint minus 14 index buffers and 6 masks (tables become dense)


def test_engine_tensors_values(swin_t):
    tensors = engine_tensors(swin_t)
    sd = swin_t.state_dict()
    for name, blk in all_blocks(swin_t):
        C, heads = blk.norm1.weight.shape[0], blk.attn.heads
        table = sd[f"swin_unet.{name}.attn.relative_position_bias_table"].numpy()
        index = sd[f"swin_unet.{name}.attn.relative_position_index"].numpy()
        bias = tensors[f"{name}.attn.relative_position_bias"]
        for h in range(heads):                              # bias[h, i, j] = table[index[i, j], h]
            assert np.array_equal(bias[h], table[index, h]), name
        scale = np.float32((C // heads) ** -0.5)
        for part in ("weight", "bias"):
            raw = sd[f"swin_unet.{name}.attn.qkv.{part}"].numpy()
            got = tensors[f"{name}.attn.qkv.{part}"]
            assert np.array_equal(got[:C], raw[:C] * scale), name      # q rows scaled in float32
            assert np.array_equal(got[C:], raw[C:]), name              # k, v rows untouched
    assert np.array_equal(tensors["output.weight"], sd["swin_unet.output.weight"].numpy())


def test_checkpoint_layouts(tmp_path, swin_t):
    import zipfile
    from segment_torch import LAYOUTS, save_checkpoint
    sd = swin_t.state_dict()
    for layout_name in LAYOUTS:
        path = tmp_path / f"{layout_name}.pth"
        save_checkpoint(sd, str(path), layout_name)
        assert zipfile.is_zipfile(path) == (layout_name != "legacy"), layout_name
        loaded = torch.load(path, weights_only=True)
        inner = {"nested-state_dict": lambda d: d["state_dict"], "nested-model": lambda d: d["model"]}.get(
            layout_name, lambda d: d)(loaded)
        prefix = "module." if layout_name == "dataparallel" else ""
        assert list(inner) == [prefix + k for k in sd], layout_name
        assert all(torch.equal(inner[prefix + k], v) for k, v in sd.items()), layout_name
    with pytest.raises(ValueError, match="unknown checkpoint layout"):
        save_checkpoint(sd, str(tmp_path / "x.pth"), "pickle")
