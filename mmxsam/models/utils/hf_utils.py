"""Small helpers shared by the wrappers of Hugging Face models (SAM, SigLIP/CLIP, causal LMs)."""
from typing import Iterable, Optional, Union

import torch
from torch import nn

DType = Union[str, torch.dtype]


def resolve_dtype(dtype: Optional[DType]) -> Optional[DType]:
    """``'bfloat16'`` -> ``torch.bfloat16``; ``'auto'``, ``None`` and dtypes pass through.

    Raises:
        ValueError: a string that names no torch dtype. TypeError: neither a str nor a dtype.
    """
    if isinstance(dtype, str) and dtype != 'auto':
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f'torch_dtype must name a torch dtype, got {dtype!r}')
        return resolved
    if dtype is not None and not isinstance(dtype, (str, torch.dtype)):
        raise TypeError(f'torch_dtype must be a str or torch.dtype, got {type(dtype).__name__}')
    return dtype


def freeze_modules(modules: Iterable[nn.Module]) -> None:
    """Eval mode and ``requires_grad=False`` for every parameter of ``modules`` (call again after ``train()``)."""
    for m in modules:
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
