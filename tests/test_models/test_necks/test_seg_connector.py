import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS

import mmxsam.models  # noqa: F401  (registers the connectors)
from mmxsam.models.utils import pixel_shuffle

TINY = dict(in_channels=32, hidden_channels=16, out_channels=(8, 16, 32), scales=(2, 1, 0.5))
FULL = dict(in_channels=1024, hidden_channels=512, out_channels=(512, 1024, 2048),
            scales=(2, 1, 0.5))


def build(type_, **kwargs):
    return MODELS.build(dict(type=type_, **kwargs))


def sam_maps(n=3, b=2, c=32, hw=(8, 8), **kw):
    return [torch.randn(b, c, *hw, **kw) for _ in range(n)]


def count(model):
    return sum(p.numel() for p in model.parameters())


def conv_level_params(c_in, hidden, mid):
    """Hand count of one conv branch (no conv bias; each LN2d has weight + bias)."""
    conv1 = c_in * hidden * 1 * 1
    ln1 = 2 * hidden
    conv3 = hidden * hidden * 3 * 3
    ln2 = 2 * hidden
    conv1_out = hidden * mid * 1 * 1
    ln3 = 2 * mid
    return conv1 + ln1 + conv3 + ln2 + conv1_out + ln3


def test_shapes_and_strides_tiny():
    neck = build('XSAMSegConnector', **TINY)
    image_size, sam_stride = 128, 16
    outs = neck(sam_maps(hw=(image_size // sam_stride, ) * 2))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]
    assert [image_size // o.shape[-1] for o in outs] == [8, 16, 32]


def test_odd_sizes_are_padded_to_even_for_every_level():
    neck = build('XSAMSegConnector', **TINY)
    outs = neck(sam_maps(hw=(7, 5)))
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 12), (8, 6), (4, 3)]


def test_tiny_param_count_and_no_bias():
    neck = build('XSAMSegConnector', **TINY)
    mids = (8 * 4, 16, 32 // 4)  # out * s^2
    assert neck.mid_channels == mids
    assert count(neck) == sum(conv_level_params(32, 16, m) for m in mids)
    for m in neck.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert m.bias is None
    # no activation anywhere in the branch: conv, LN, conv, LN, conv, LN
    for branch in neck.branches:
        kinds = [type(m).__name__ for m in branch]
        assert kinds == ['Conv2d', 'LayerNorm2d'] * 3
        assert [m.kernel_size for m in branch[0::2]] == [(1, 1), (3, 3), (1, 1)]
        assert all(m.eps == 1e-6 for m in branch[1::2])


def test_full_size_on_meta_device():
    with torch.device('meta'):
        neck = build('XSAMSegConnector', **FULL)
        outs = neck([torch.empty(1, 1024, 64, 64) for _ in range(3)])
    assert [tuple(o.shape) for o in outs] == [(1, 512, 128, 128), (1, 1024, 64, 64),
                                               (1, 2048, 32, 32)]
    # Level s: Conv1x1 1024->512, LN(512), Conv3x3 512->512, LN(512), Conv1x1 512->1024*s, LN.
    shared = 1024 * 512 + 2 * 512 + 512 * 512 * 9 + 2 * 512  # 2,885,632
    level_s2 = shared + 512 * 2048 + 2 * 2048  # 3,938,304
    level_s1 = shared + 512 * 1024 + 2 * 1024  # 3,411,968
    level_s05 = shared + 512 * 512 + 2 * 512  # 3,148,800
    assert shared == 2_885_632
    assert count(neck) == level_s2 + level_s1 + level_s05 == 10_499_072
    assert count(neck) == sum(conv_level_params(1024, 512, m) for m in (2048, 1024, 512))


def test_gradients_flow():
    neck = build('XSAMSegConnector', **TINY)
    maps = sam_maps(requires_grad=True)
    sum(o.square().mean() for o in neck(maps)).backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in maps)


def test_branch_then_shuffle_semantics_and_channel_order():
    neck = build('XSAMSegConnector', **TINY)
    official = build('XSAMSegConnector', channel_order='xsam', **TINY)
    official.load_state_dict(neck.state_dict())
    maps = sam_maps()
    outs, outs_x = neck(maps), official(maps)
    for level, (x, s) in enumerate(zip(maps, (2, 1, 0.5))):
        feat = neck.branches[level](x)
        assert torch.allclose(outs[level], pixel_shuffle(feat, s))
        assert torch.allclose(outs_x[level], pixel_shuffle(feat, s, channel_order='xsam'))
    assert torch.equal(outs[1], outs_x[1])  # s=1: no shuffle, orders agree


def test_layernorm2d_normalises_channels():
    neck = build('XSAMSegConnector', **TINY)
    ln = neck.branches[0][1]
    x = torch.randn(2, 16, 3, 3)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (16, ), eps=1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(ln(x), ref, atol=1e-6)


def test_init_weights_normal_002():
    neck = build('XSAMSegConnector', in_channels=64, hidden_channels=64, out_channels=(64, ),
                 scales=(1, ))
    neck.init_weights()
    w = neck.branches[0][2].weight  # 64*64*9 samples
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    assert torch.equal(neck.branches[0][1].weight, torch.ones(64))


def test_in_indices_select_maps():
    neck = build('XSAMSegConnector', in_indices=(1, 2, 3), **TINY)
    maps = sam_maps(n=4)
    ref = build('XSAMSegConnector', **TINY)
    ref.load_state_dict(neck.state_dict())
    for a, b in zip(neck(maps), ref(maps[1:])):
        assert torch.equal(a, b)


def test_per_level_input_channels():
    neck = build('XSAMSegConnector', in_channels=(8, 16), hidden_channels=(4, 8),
                 out_channels=(4, 64), scales=(2, 0.5))
    outs = neck([torch.randn(1, 8, 6, 6), torch.randn(1, 16, 6, 6)])
    assert [tuple(o.shape) for o in outs] == [(1, 4, 12, 12), (1, 64, 3, 3)]


# ---------------------------------------------------------------- MLP variant
def test_mlp_connector_shapes_params_grads():
    neck = build('XSAMMLPConnector', in_channels=32, out_channels=(8, 16, 32))
    maps = sam_maps(requires_grad=True)
    outs = neck(maps)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]
    # hidden defaults to the pre-shuffle width (official): Linear(in->mid), Linear(mid->mid)
    assert count(neck) == sum(32 * m + m * m for m in (32, 16, 8))
    assert all(m.bias is None for m in neck.modules() if isinstance(m, nn.Linear))
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None for p in neck.parameters())
    # per-pixel: the MLP branch equals two 1x1 convs with a GELU between them
    lin1, act, lin2 = neck.branches[0].layers
    assert isinstance(act, nn.GELU)
    x = maps[0].detach()
    ref = F.conv2d(act(F.conv2d(x, lin1.weight[..., None, None])), lin2.weight[..., None, None])
    assert torch.allclose(neck.branches[0](x), ref, atol=1e-5)


def test_mlp_connector_full_size_tab9_single_scale():
    with torch.device('meta'):
        neck = build('XSAMMLPConnector', in_channels=1024, out_channels=(1024, ), scales=(1, ),
                     in_indices=(-1, ))
        (out, ) = neck([torch.empty(1, 1024, 64, 64) for _ in range(3)])
    assert tuple(out.shape) == (1, 1024, 64, 64)
    assert count(neck) == 1024 * 1024 + 1024 * 1024 == 2_097_152


def test_mlp_connector_explicit_hidden():
    neck = build('XSAMMLPConnector', in_channels=32, out_channels=(8, ), scales=(2, ),
                 hidden_channels=12)
    assert count(neck) == 32 * 12 + 12 * 32
    (out, ) = neck([torch.randn(1, 32, 3, 3)])
    assert tuple(out.shape) == (1, 8, 6, 6)


# ------------------------------------------------------- single-scale variant
def test_single_scale_connector():
    neck = build('XSAMSingleScaleConnector', in_channels=32, hidden_channels=16, out_channels=24)
    maps = sam_maps()
    outs = neck(maps)
    assert isinstance(outs, tuple) and len(outs) == 1
    assert tuple(outs[0].shape) == (2, 24, 8, 8)  # stride 16 kept
    assert torch.equal(outs[0], neck(maps[-1])[0])  # in_index=-1 picks the last SAM map
    assert count(neck) == conv_level_params(32, 16, 24)
    outs[0].sum().backward()
    assert all(p.grad is not None for p in neck.parameters())


def test_single_scale_connector_full_size():
    with torch.device('meta'):
        neck = build('XSAMSingleScaleConnector', in_channels=1024, hidden_channels=512,
                     out_channels=1024)
        (out, ) = neck([torch.empty(1, 1024, 64, 64) for _ in range(3)])
    assert tuple(out.shape) == (1, 1024, 64, 64)
    assert count(neck) == conv_level_params(1024, 512, 1024) == 3_411_968


# ------------------------------------------------------------------ bad configs
@pytest.mark.parametrize('cfg, exc, match', [
    (dict(TINY, out_channels=(8, 16)), ValueError, 'out_channels'),
    (dict(TINY, in_channels=(32, 32)), ValueError, 'in_channels'),
    (dict(TINY, hidden_channels=(16, 16, 16, 16)), ValueError, 'hidden_channels'),
    (dict(TINY, hidden_channels=0), ValueError, 'hidden_channels'),
    (dict(TINY, out_channels=(8, 16, 30)), ValueError, r'out_channels\[2\]'),
    (dict(TINY, scales=(2, 1, 3)), ValueError, 'scales'),
    (dict(TINY, scales=()), ValueError, 'scales'),
    (dict(TINY, in_indices=(0, 1)), ValueError, 'in_indices'),
    (dict(TINY, channel_order='nhwc'), ValueError, 'channel_order'),
    (dict(TINY, in_channels='32'), TypeError, 'in_channels'),
])
def test_bad_configs_raise(cfg, exc, match):
    with pytest.raises(exc, match=match):
        build('XSAMSegConnector', **cfg)


def test_bad_variant_configs_raise():
    with pytest.raises(ValueError, match='hidden_channels'):
        build('XSAMMLPConnector', in_channels=32, out_channels=(8, 16), scales=(2, 1),
              hidden_channels=(4, 4, 4))
    with pytest.raises(TypeError, match='out_channels'):
        build('XSAMSingleScaleConnector', in_channels=32, hidden_channels=16,
              out_channels=(8, 16))
    with pytest.raises(ValueError, match='scale'):
        build('XSAMSingleScaleConnector', in_channels=32, hidden_channels=16, out_channels=8,
              scale=0.75)


def test_bad_inputs_raise():
    neck = build('XSAMSegConnector', **TINY)
    with pytest.raises(ValueError, match='expects 3 maps'):
        neck(sam_maps(n=2))
    with pytest.raises(ValueError, match=r'level 1: expected a \(B, 32, H, W\)'):
        neck([torch.randn(1, 32, 4, 4), torch.randn(1, 16, 4, 4), torch.randn(1, 32, 4, 4)])
    with pytest.raises(TypeError, match='list/tuple'):
        neck(torch.randn(1, 32, 4, 4))
    single = build('XSAMSingleScaleConnector', in_channels=32, hidden_channels=16,
                   out_channels=8, in_index=3)
    with pytest.raises(ValueError, match='in_indices'):
        single(sam_maps(n=2))


def test_builds_under_mmdet_scope_and_from_config():
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config(dict(model=dict(type='XSAMSegConnector', **TINY)))
    with DefaultScope.overwrite_default_scope('mmdet'):
        neck = MODELS.build(cfg.model)
    assert type(neck.branches[0][1]).__name__ == 'LayerNorm2d'
    assert len(neck(sam_maps())) == 3
