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
    nn.Sequential(a, b).train()  # both start in training mode
    freeze_modules([a, b])
    assert not any(p.requires_grad for p in a.parameters()) and not a.training and not b.training


def test_hf_model_kwargs():
    from mmxsam.models.utils.hf_utils import hf_model_kwargs
    extra = dict(revision='main')
    kw = hf_model_kwargs('Owner', 'some/model', None, 'a dict', 'bfloat16', 'sdpa', extra, attn_choices=('sdpa', ))
    assert kw == dict(revision='main', dtype=torch.bfloat16, attn_implementation='sdpa')
    assert extra == dict(revision='main')  # the caller's dict is not modified
    assert hf_model_kwargs('Owner', None, dict(a=1), 'a dict') == {}
    with pytest.raises(ValueError, match=r'Owner needs exactly one of name_or_path .* and config \(a dict\)'):
        hf_model_kwargs('Owner', 'x', dict(a=1), 'a dict')
    with pytest.raises(ValueError, match='Owner needs exactly one'):
        hf_model_kwargs('Owner', None, None, 'a dict')
    with pytest.raises(ValueError, match=r"attn_implementation must be one of \('eager',\), got 'sdpa'"):
        hf_model_kwargs('Owner', 'x', None, 'a dict', attn_implementation='sdpa', attn_choices=('eager', ))
    with pytest.raises(ValueError, match="torch_dtype='auto' needs name_or_path"):
        hf_model_kwargs('Owner', None, dict(a=1), 'a dict', torch_dtype='auto')
