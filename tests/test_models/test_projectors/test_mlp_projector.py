import pytest
import torch
from torch import nn

from mmxsam.models.projectors import XSAMMLPProjector


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_layers_and_shapes():
    proj = XSAMMLPProjector(12, 8)
    assert [type(m) for m in proj.model] == [nn.Linear, nn.GELU, nn.Linear]
    assert proj.model[0].weight.shape == (8, 12) and proj.model[2].weight.shape == (8, 8)
    assert set(proj.state_dict()) == {'model.0.weight', 'model.0.bias', 'model.2.weight',
                                      'model.2.bias'}  # the official key names
    x = torch.randn(2, 5, 12)
    ref = proj.model[2](torch.nn.functional.gelu(proj.model[0](x)))
    torch.testing.assert_close(proj(x), ref)
    assert proj(torch.randn(7, 12)).shape == (7, 8)

    proj = XSAMMLPProjector(12, 8, hidden_channels=6, depth=3, bias=False,
                            act_cfg=dict(type='ReLU'))
    assert [tuple(m.weight.shape) for m in proj.model[::2]] == [(6, 12), (6, 6), (8, 6)]
    assert isinstance(proj.model[1], nn.ReLU) and proj.model[0].bias is None
    assert [type(m) for m in XSAMMLPProjector(12, 8, depth=1).model] == [nn.Linear]


def test_registry_and_errors():
    from mmdet.registry import MODELS
    proj = MODELS.build(dict(type='XSAMMLPProjector', in_channels=4, out_channels=3))
    assert isinstance(proj, XSAMMLPProjector)
    with pytest.raises(ValueError, match=r'\(\.\.\., 4\)'):
        proj(torch.randn(2, 5))
    with pytest.raises(ValueError, match='depth'):
        XSAMMLPProjector(4, 3, depth=0)


def test_full_size_on_meta():
    with torch.device('meta'):
        visual = XSAMMLPProjector(1152, 3072)
        llm = XSAMMLPProjector(3072, 256)
        assert visual(torch.empty(2, 729, 1152)).shape == (2, 729, 3072)
        assert llm(torch.empty(2, 40, 3072)).shape == (2, 40, 256)
    assert _count(visual) == 1152 * 3072 + 3072 + 3072 * 3072 + 3072 == 12_982_272
    assert _count(llm) == 3072 * 256 + 256 + 256 * 256 + 256 == 852_480
