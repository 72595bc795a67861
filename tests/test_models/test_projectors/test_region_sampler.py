import pytest
import torch

from mmxsam.models.projectors import XSAMRegionSampler, sample_points


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _blob_mask(h=64, w=64, seed=0):
    """An irregular mask: a disc plus random pixels, at least one pixel on."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    disc = (yy - h * 0.3) ** 2 + (xx - w * 0.6) ** 2 < (min(h, w) * 0.2) ** 2
    return disc | (torch.rand(h, w, generator=_gen(seed)) < 0.05)


def _pixels(points, h, w, align_corners):
    """Invert the documented mapping: grid coords (K, P, 2) -> integer (y, x)."""
    gx, gy = points.unbind(-1)
    if align_corners:  # gx = 2 x / W - 1
        x, y = (gx + 1) * w / 2, (gy + 1) * h / 2
    else:  # gx = (2 x + 1) / W - 1
        x, y = (gx + 1) * w / 2 - 0.5, (gy + 1) * h / 2 - 0.5
    torch.testing.assert_close(x, x.round(), atol=1e-4, rtol=0)
    torch.testing.assert_close(y, y.round(), atol=1e-4, rtol=0)
    return y.round().long(), x.round().long()


@pytest.mark.parametrize('align_corners', [True, False])
def test_sample_points_inside_mask(align_corners):
    masks = torch.stack([_blob_mask(seed=0), _blob_mask(seed=1), torch.zeros(64, 64, dtype=bool)])
    masks[2, 10, 20] = masks[2, 11, 21] = masks[2, 12, 22] = True  # 3 pixels < num_points
    points = sample_points(masks, 50, _gen(), align_corners=align_corners)
    assert points.shape == (3, 50, 2) and points.dtype == torch.float32
    assert points.min() >= -1 and points.max() <= 1
    y, x = _pixels(points, 64, 64, align_corners)
    assert masks[torch.arange(3)[:, None], y, x].all()
    flat = y * 64 + x
    for k in range(2):  # enough pixels: drawn without replacement
        assert flat[k].unique().numel() == 50
    assert set(flat[2].tolist()) == {10 * 64 + 20, 11 * 64 + 21, 12 * 64 + 22}  # all, repeated
    # a 2-D mask gives (P, 2)
    assert sample_points(masks[0], 7, _gen()).shape == (7, 2)


def test_sample_points_uniform():
    mask = torch.zeros(4, 4, dtype=bool)
    mask[1, :] = True  # 4 pixels, draw 1 many times through a batch of identical masks
    points = sample_points(mask.expand(4000, 4, 4), 1, _gen(1))
    _, x = _pixels(points[:, 0], 4, 4, True)
    freq = torch.bincount(x, minlength=4).float() / 4000
    torch.testing.assert_close(freq, torch.full((4, ), 0.25), atol=0.04, rtol=0)


def test_exact_mapping_single_pixel():
    """A one-pixel mask samples the bilinear value at the documented grid position."""
    feats = torch.randn(1, 5, 4, 4)
    mask = torch.zeros(1, 16, 16, dtype=bool)
    mask[0, 4, 8] = True  # row y = 4, column x = 8
    for align_corners, (fx, fy) in (
            (True, (8 * 3 / 16, 4 * 3 / 16)),  # x (w - 1) / W: (1.5, 0.75)
            (False, (8.5 * 4 / 16 - 0.5, 4.5 * 4 / 16 - 0.5))):  # (x + .5) w / W - .5
        out, = XSAMRegionSampler(num_points=4, align_corners=align_corners)(feats, [mask])
        x0, y0 = int(fx), int(fy)
        ax, ay = fx - x0, fy - y0
        f = feats[0]
        ref = ((1 - ay) * ((1 - ax) * f[:, y0, x0] + ax * f[:, y0, x0 + 1])
               + ay * ((1 - ax) * f[:, y0 + 1, x0] + ax * f[:, y0 + 1, x0 + 1]))
        torch.testing.assert_close(out[0], ref)


@pytest.mark.parametrize('align_corners', [True, False])
@pytest.mark.parametrize('pool', ['max', 'mean'])
def test_constant_region(pool, align_corners):
    value = torch.tensor([0.5, -2.0, 3.0])
    feats = torch.randn(1, 3, 8, 8) * 10
    feats[0, :, 1:7, 1:7] = value[:, None, None]  # constant on feature cells 1..6
    mask = torch.zeros(1, 64, 64, dtype=bool)
    # pixels 24..39 map to cells 2.6..4.3 (True) or 2.6..4.4 (False): bilinear neighbours
    # all inside the constant cells
    mask[0, 24:40, 24:40] = _blob_mask(16, 16)
    sampler = XSAMRegionSampler(num_points=64, pool=pool, align_corners=align_corners)
    out, = sampler(feats, [mask], generator=_gen())
    assert out.shape == (1, 3)
    torch.testing.assert_close(out[0], value)


def test_max_at_least_mean_and_determinism():
    feats = torch.randn(2, 6, 8, 8)
    masks = [torch.stack([_blob_mask(seed=s) for s in range(3)]), _blob_mask(seed=5)[None]]
    maxed = XSAMRegionSampler(num_points=32, pool='max')(feats, masks, generator=_gen(7))
    meaned = XSAMRegionSampler(num_points=32, pool='mean')(feats, masks, generator=_gen(7))
    for a, b in zip(maxed, meaned):  # same seed -> same points
        assert (a >= b - 1e-6).all() and (a > b).any()
    again = XSAMRegionSampler(num_points=32, pool='max')(feats, masks, generator=_gen(7))
    other = XSAMRegionSampler(num_points=32, pool='max')(feats, masks, generator=_gen(8))
    assert all(torch.equal(a, b) for a, b in zip(maxed, again))
    assert not all(torch.equal(a, b) for a, b in zip(maxed, other))


def test_batch_with_different_k_and_tokens():
    from mmdet.registry import MODELS
    sampler = MODELS.build(dict(type='XSAMRegionSampler', num_points=16))
    assert sampler.pool == 'max' and sampler.align_corners and not list(sampler.parameters())
    feats = torch.randn(3, 5, 4, 6, requires_grad=True)
    masks = [torch.stack([_blob_mask(32, 48, s) for s in range(2)]),
             torch.zeros(0, 32, 48, dtype=bool),
             torch.stack([_blob_mask(20, 20, s) for s in range(3)])]  # sizes differ per image
    outs = sampler(feats, masks, generator=_gen(3))
    assert [tuple(o.shape) for o in outs] == [(2, 5), (0, 5), (3, 5)]
    sum(o.sum() for o in outs).backward()
    assert feats.grad[0].abs().sum() > 0 and feats.grad[1].abs().sum() == 0
    # (B, h*w, C) tokens row-major on the grid give the same features
    tokens = feats.detach().flatten(2).transpose(1, 2)  # (3, 24, 5)
    outs_t = sampler(tokens, masks, generator=_gen(3), grid_size=(4, 6))
    for a, b in zip(outs, outs_t):
        torch.testing.assert_close(a, b)
    # bf16 features come back in bf16
    out, = sampler(feats[:1].detach().bfloat16(), masks[:1])
    assert out.dtype == torch.bfloat16


def test_errors():
    sampler = XSAMRegionSampler(num_points=8)
    feats = torch.randn(2, 4, 4, 4)
    masks = [_blob_mask(16, 16)[None], torch.stack([_blob_mask(16, 16),
                                                    torch.zeros(16, 16, dtype=bool)])]
    with pytest.raises(ValueError, match='prompt mask 1 of sample 1 is empty'):
        sampler(feats, masks)
    with pytest.raises(ValueError, match=r'mask\(s\) \[1\] of 2 have no foreground'):
        sample_points(masks[1], 8)
    with pytest.raises(ValueError, match='2 feature maps'):
        sampler(feats, masks[:1])
    with pytest.raises(ValueError, match=r'\(K, H, W\)'):
        sampler(feats, [m[0] for m in masks])
    with pytest.raises(ValueError, match='square'):
        sampler(torch.randn(2, 12, 4), masks)
    with pytest.raises(ValueError, match='pool'):
        XSAMRegionSampler(pool='avg')
    with pytest.raises(ValueError, match='num_points'):
        XSAMRegionSampler(num_points=0)


def test_full_size():
    """X-SAM sizes: seg projector tokens (1, 1024, 3072) on 32x32, 1024x1024 prompt masks."""
    feats = torch.randn(1, 1024, 3072)
    masks = torch.zeros(4, 1024, 1024, dtype=bool)
    masks[0, 100:600, 200:900] = True  # 350k pixels
    masks[1, 500, 500] = True  # a single pixel
    masks[2] = _blob_mask(1024, 1024)
    masks[3, ::2, ::2] = True
    out, = XSAMRegionSampler()(feats, [masks], generator=_gen())
    assert out.shape == (4, 3072)
