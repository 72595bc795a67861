import pytest
import torch
from torch import nn

from mmxsam.models.utils.hf_utils import freeze_modules, resolve_dtype


def test_resolve_dtype():
    assert resolve_dtype('bfloat16') is torch.bfloat16
    assert resolve_dtype(torch.float16) is torch.float16
    assert resolve_dtype('auto') == 'auto' and resolve_dtype(None) is None
    with pytest.raises(ValueError, match="torch_dtype must name a torch dtype, got 'bf17'"):
        resolve_dtype('bf17')
    with pytest.raises(TypeError, match='torch_dtype must be a str or torch.dtype, got int'):
        resolve_dtype(16)


def test_freeze_modules():
    a, b = nn.Linear(2, 2), nn.Dropout()
    model = nn.Sequential(a, b).train()
    freeze_modules([a, b])
    assert not any(p.requires_grad for p in a.parameters()) and not a.training and not b.training
