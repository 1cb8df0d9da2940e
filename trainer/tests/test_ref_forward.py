"""Forward of the reference Swin-UNet: named stage shapes, channel repetition, the masked stream, the networks
AdvMIM trains around it."""
import numpy as np
import pytest
import torch

from segment_torch import (BlockMaskGenerator, Discriminator, MiMSwinUNet, MiMUNet, SwinUNet, SwinUNetConfig)
from segment_torch.model import window_partition, window_reverse

SMALL = SwinUNetConfig(img_size=32, patch_size=2, num_classes=3, embed_dim=12, depths=[2, 2, 2], num_heads=[1, 2, 4],
                       window_size=4)


@pytest.fixture(scope="module")
def swin_t():
    torch.manual_seed(0)
    return SwinUNet(SwinUNetConfig(num_classes=4)).eval()


def test_swin_t_forward_stage_shapes(swin_t):
    stages = {}
    with torch.no_grad():
        logits = swin_t(torch.rand(2, 3, 224, 224), stages)
    expected = {"patch_embed": (2, 3136, 96),
                "encoder.0": (2, 3136, 96), "encoder.1": (2, 784, 192), "encoder.2": (2, 196, 384),
                "encoder.3": (2, 49, 768), "bottleneck": (2, 49, 768),
                "decoder.0": (2, 196, 384), "decoder.1": (2, 784, 192), "decoder.2": (2, 3136, 96),
                "decoder.3": (2, 3136, 96), "norm_up": (2, 3136, 96), "up": (2, 224 * 224, 96),
                "logits": (2, 4, 224, 224)}
    assert {k: tuple(v.shape) for k, v in stages.items()} == expected
    assert list(stages) == list(expected)          # forward order
    assert stages["logits"] is logits
    assert torch.isfinite(logits).all()


def test_gray_input_equals_repeated_rgb(swin_t):
    gray = torch.rand(1, 1, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = swin_t(gray)
        b = swin_t(gray.repeat(1, 3, 1, 1))
    assert torch.equal(a, b)
    rgb = gray.repeat(1, 3, 1, 1)
    rgb[:, 1] = 0                                  # and the repetition matters: a different RGB image differs
    with torch.no_grad():
        assert not torch.allclose(a, swin_t(rgb))


def test_window_partition_round_trip_and_order():
    x = torch.arange(2 * 8 * 8 * 3, dtype=torch.float32).view(2, 8, 8, 3)
    w = window_partition(x, 4)                     # (2*4, 4, 4, 3): windows row-major per image
    assert w.shape == (8, 4, 4, 3)
    assert torch.equal(w[1], x[0, 0:4, 4:8]) and torch.equal(w[2], x[0, 4:8, 0:4]) and torch.equal(w[5], x[1, 0:4, 4:8])
    assert torch.equal(window_reverse(w, 4, 8, 8), x)


def test_patch_merging_and_expand_orders():
    from segment_torch.model import PatchExpand, PatchMerging
    C, res = 2, 4
    pm = PatchMerging(res, C)
    x = torch.randn(1, res * res, C)
    grid = x.view(1, res, res, C)
    with torch.no_grad():
        pm.norm.weight.fill_(1); pm.norm.bias.zero_()
        pm.reduction.weight.copy_(torch.eye(2 * C, 4 * C))      # keep the first 2C merged channels
        got = pm(x).view(1, res // 2, res // 2, 2 * C)
        want = torch.nn.functional.layer_norm(
            torch.cat([grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]], -1), (4 * C,))
        assert torch.allclose(got, want[..., :2 * C], atol=1e-6)
    pe = PatchExpand(res, 4)                       # channel p1*2c + p2*c + ci -> pixel (2h+p1, 2w+p2), c = 2
    with torch.no_grad():
        pe.expand.weight.copy_(torch.randn(8, 4))
        pe.norm.weight.fill_(1); pe.norm.bias.zero_()
        y = torch.randn(1, res * res, 4)
        expanded = pe.expand(y).view(1, res, res, 8)
        out = pe(y).view(1, 2 * res, 2 * res, 2)
        for p1 in range(2):
            for p2 in range(2):
                src = expanded[..., p1 * 4 + p2 * 2: p1 * 4 + p2 * 2 + 2]
                assert torch.allclose(out[:, p1::2, p2::2], torch.nn.functional.layer_norm(src, (2,)), atol=1e-6)


def test_small_config_runs_and_masked_stream_with_empty_mask_is_plain():
    torch.manual_seed(0)
    s = MiMSwinUNet(SMALL).eval()
    x = torch.rand(2, 1, 32, 32)
    grid = SMALL.patches_resolution
    with torch.no_grad():
        plain, masked = s(x, torch.zeros(2, grid, grid, dtype=torch.long))
        assert plain.shape == (2, 3, 32, 32) and torch.equal(plain, masked)
        _, masked = s(x, torch.ones(2, grid, grid, dtype=torch.long))
        assert not torch.allclose(plain, masked)
        assert torch.equal(s.plain()(x), plain)    # the inference weights alone give the same logits


def test_block_mask_generator_counts():
    rng = np.random.default_rng(0)
    tokens = BlockMaskGenerator(224, 32, 4, 0.7)(4, rng)   # Swin token grid
    pixels = BlockMaskGenerator(224, 32, 1, 0.7)(4, rng)   # UNet pixel grid
    assert tokens.shape == (4, 56, 56) and pixels.shape == (4, 224, 224)
    for m, block in ((tokens, 8), (pixels, 32)):
        blocks = m[:, ::block, ::block]                     # (4, 7, 7)
        assert (blocks.reshape(4, -1).sum(1) == 35).all()    # exactly ceil(49 * 0.7)
        assert np.array_equal(np.repeat(np.repeat(blocks, block, 1), block, 2), m)   # constant inside a block
    assert not np.array_equal(tokens[0], tokens[1])


def test_unet_and_discriminator_shapes():
    torch.manual_seed(0)
    c = MiMUNet(in_chns=1, num_classes=4).eval()
    d = Discriminator(4)
    x = torch.rand(2, 1, 224, 224)
    mask = torch.from_numpy(BlockMaskGenerator(224, 32, 1)(2, np.random.default_rng(0)))
    with torch.no_grad():
        logits, masked = c(x, mask)
        assert logits.shape == masked.shape == (2, 4, 224, 224)
        assert not torch.allclose(logits, masked)
        assert d(logits.softmax(1)).shape == (2, 1, 7, 7)
