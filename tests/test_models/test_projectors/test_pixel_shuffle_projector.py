import pytest
import torch

from mmxsam.models.projectors import XSAMMLPProjector, XSAMPixelShuffleProjector
from mmxsam.models.utils.pixel_shuffle import pixel_shuffle_tokens


@pytest.mark.parametrize('channel_order', ['xsam', 'torch'])
def test_shuffle_then_mlp(channel_order):
    proj = XSAMPixelShuffleProjector(8, 16, channel_order=channel_order)
    assert isinstance(proj, XSAMMLPProjector) and proj.in_channels == 32
    assert set(proj.state_dict()) == {'model.0.weight', 'model.0.bias', 'model.2.weight',
                                      'model.2.bias'}
    maps = torch.randn(2, 8, 6, 4)  # NCHW, as SAMViTBackbone returns
    tokens = maps.flatten(2).transpose(1, 2)  # (2, 24, 8) row-major
    shuffled, grid = pixel_shuffle_tokens(tokens, 6, 4, 0.5, channel_order=channel_order)
    assert shuffled.shape == (2, 6, 32) and grid == (3, 2) == proj.output_grid(6, 4)
    ref = proj.model(shuffled)
    torch.testing.assert_close(proj(maps), ref)
    torch.testing.assert_close(proj(tokens, grid_size=(6, 4)), ref)
    # odd grid: zero-padded to even as the official maybe_pad
    assert proj(torch.randn(1, 8, 5, 5)).shape == (1, 9, 16) and proj.output_grid(5, 5) == (3, 3)
    # square token grids need no grid_size
    assert proj(torch.randn(1, 36, 8)).shape == (1, 9, 16)


def test_channel_order_matters_and_xsam_layout():
    """xsam order: output channel (2 * i + j) * C + c holds input (c, 2h + i, 2w + j)."""
    proj = XSAMPixelShuffleProjector(2, 3, depth=1)
    with torch.no_grad():
        proj.model[0].weight.zero_()
        proj.model[0].bias.zero_()
        proj.model[0].weight[0, (2 * 0 + 1) * 2 + 1] = 1  # i=0, j=1, c=1
    maps = torch.arange(2 * 4 * 4, dtype=torch.float).reshape(1, 2, 4, 4)
    out = proj(maps)[0, :, 0].reshape(2, 2)  # (h', w')
    torch.testing.assert_close(out, maps[0, 1, 0::2, 1::2])


def test_registry_and_errors():
    from mmdet.registry import MODELS
    proj = MODELS.build(dict(type='XSAMPixelShuffleProjector', in_channels=4, out_channels=6))
    assert proj.channel_order == 'xsam' and proj.scale == 0.5
    with pytest.raises(ValueError, match=r'\(B, 4, h, w\)'):
        proj(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match='square'):
        proj(torch.randn(1, 12, 4))
    with pytest.raises(ValueError, match='power of two'):
        XSAMPixelShuffleProjector(4, 6, scale=0.3)
    with pytest.raises(ValueError, match='channel_order'):
        XSAMPixelShuffleProjector(4, 6, channel_order='tf')


def test_full_size_on_meta():
    with torch.device('meta'):
        proj = XSAMPixelShuffleProjector(1024, 3072)
        out = proj(torch.empty(2, 1024, 64, 64))  # SAM-L block 23 (index -2)
    assert out.shape == (2, 1024, 3072) and proj.output_grid(64, 64) == (32, 32)
    n = sum(p.numel() for p in proj.parameters())
    assert n == 4096 * 3072 + 3072 + 3072 * 3072 + 3072 == 22_026_240
