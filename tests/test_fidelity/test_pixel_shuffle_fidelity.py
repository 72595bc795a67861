"""Fidelity: the pixel shuffle of the seg projector and the connector, as the X-SAM configs set them up,
against index loops written from the reference's definition (reference §1.2, §1.5), not from reshapes.

``tests/test_models/test_utils/test_pixel_shuffle.py`` already checks the ``pixel_shuffle`` function against
loops (both channel orders, odd sizes, s = 0.5 / 0.25 / 2) and a transcription of the official four steps;
here the loops check the modules themselves: the seg projector's token count, token order (row-major over
the shuffled grid) and per-token channel layout, and the connector's up/down-shuffled maps.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401  (registration)
from mmdet.registry import MODELS

STAGE3_BASE = 'configs/_base_/models/xsam_phi3_siglip2_sam_l.py'
STAGE1_BASE = 'configs/_base_/models/xsam_segmentor_sam_l.py'


def _at(x, b, c, y, xx):
    """x[b, c, y, xx] of an NCHW map, 0 beyond the bottom/right edge (the official ``maybe_pad``)."""
    return x[b, c, y, xx].item() if y < x.shape[2] and xx < x.shape[3] else 0.0


def loop_projector_tokens(x):
    """Seg projector input tokens for s = 0.5, official order: token ``t = h' * W' + w'`` (row-major) holds
    ``[(2i + j) * C + c] = x[c, 2h' + i, 2w' + j]``."""
    b_, c_, h, w = x.shape
    oh, ow = (h + 1) // 2, (w + 1) // 2
    out = torch.zeros(b_, oh * ow, 4 * c_)
    for b in range(b_):
        for hh in range(oh):
            for ww in range(ow):
                for i in range(2):
                    for j in range(2):
                        for c in range(c_):
                            out[b, hh * ow + ww, (2 * i + j) * c_ + c] = _at(x, b, c, 2 * hh + i, 2 * ww + j)
    return out


@pytest.fixture(scope='module')
def configs(repo_root):
    init_default_scope('mmdet')
    return (Config.fromfile(osp.join(repo_root, STAGE3_BASE)).model,
            Config.fromfile(osp.join(repo_root, STAGE1_BASE)).model)


@pytest.mark.parametrize('hw', [(4, 6), (5, 3), (1, 1)])
def test_seg_projector_tokens_equal_the_loop(configs, hw):
    cfg = configs[0].seg_projector
    assert (cfg.type, cfg.scale, cfg.channel_order) == ('XSAMPixelShuffleProjector', 0.5, 'xsam')
    c = 3
    proj = MODELS.build(dict(cfg, in_channels=c, out_channels=4 * c, depth=1))
    with torch.no_grad():  # a single identity linear: the output is the shuffled tokens themselves
        proj.model[0].weight.copy_(torch.eye(4 * c))
        proj.model[0].bias.zero_()
    x = torch.randn(2, c, *hw)
    with torch.no_grad():
        tokens = proj(x)
    h, w = hw
    assert tokens.shape == (2, ((h + 1) // 2) * ((w + 1) // 2), 4 * c)
    assert proj.output_grid(h, w) == ((h + 1) // 2, (w + 1) // 2)
    torch.testing.assert_close(tokens, loop_projector_tokens(x), atol=0, rtol=0)


def test_seg_projector_token_count_at_full_size(configs):
    """SAM-L block 23 at 1024 px is 64 x 64 x 1024: 32 x 32 = 1024 tokens of 4096 channels before the MLP."""
    cfg = configs[0].seg_projector
    with torch.device('meta'):
        proj = MODELS.build(cfg)
        tokens = proj(torch.empty(1, 1024, 64, 64))
    assert proj.in_channels == 4096 and tuple(tokens.shape) == (1, 1024, 3072)


def test_connector_shuffles_equal_the_loops(configs):
    """The stage-1 connector (``channel_order='xsam'``): level s=2 out[c, 2h + i, 2w + j] = in[(2j + i) C + c, h, w]
    (the official up-shuffle, note j before i), level s=0.5 the same layout as the projector, s=1 untouched."""
    cfg = configs[1].neck
    assert cfg.channel_order == 'xsam' and list(cfg.scales)[-3:] == [2.0, 1.0, 0.5]
    neck = MODELS.build(dict(cfg, in_channels=8, hidden_channels=8, out_channels=[2, 8, 32])).eval()
    maps = [torch.randn(1, 8, 4, 6) for _ in range(3)]
    with torch.no_grad():
        outs = neck(maps)
        up, same, down = [neck.branches[k](maps[k]) for k in range(3)]  # the branches before the shuffle
    assert up.shape == (1, 8, 4, 6) and down.shape == (1, 8, 4, 6)
    ref_up = torch.zeros(1, 2, 8, 12)
    for c in range(2):
        for h in range(4):
            for w in range(6):
                for i in range(2):
                    for j in range(2):
                        ref_up[0, c, 2 * h + i, 2 * w + j] = up[0, (2 * j + i) * 2 + c, h, w]
    torch.testing.assert_close(outs[0], ref_up, atol=0, rtol=0)
    torch.testing.assert_close(outs[1], same, atol=0, rtol=0)
    ref_down = loop_projector_tokens(down).transpose(1, 2).reshape(1, 32, 2, 3)
    torch.testing.assert_close(outs[2], ref_down, atol=0, rtol=0)
