"""Small helpers shared by the wrappers of Hugging Face models (SAM, SigLIP/CLIP, causal LMs)."""
from typing import Iterable, Optional, Sequence, Union

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


def hf_model_kwargs(owner: str, name_or_path: Optional[str], config: object, config_desc: str,
                    torch_dtype: Optional[DType] = None, attn_implementation: Optional[str] = None,
                    hf_kwargs: Optional[dict] = None, attn_choices: Optional[Sequence[str]] = None) -> dict:
    """Check the arguments every HF wrapper shares and return the ``from_pretrained``/``from_config`` kwargs.

    Args:
        owner: the wrapper's name, for messages. ``config_desc``: what ``config`` may be, for messages.
        name_or_path / config: exactly one of them (pretrained weights, or a fresh model from a config).
        torch_dtype: resolved with :func:`resolve_dtype`; ``'auto'`` needs ``name_or_path``.
        attn_implementation: passed on when set; checked against ``attn_choices`` when given.
        hf_kwargs: extra kwargs, copied (never modified).

    Returns:
        dict: ``hf_kwargs`` plus ``dtype`` and ``attn_implementation`` when set.
    """
    if (name_or_path is None) == (config is None):
        raise ValueError(f'{owner} needs exactly one of name_or_path (pretrained weights) and config '
                         f'({config_desc}), got name_or_path={name_or_path!r}, config={config!r}')
    if attn_choices is not None and attn_implementation not in (None, *attn_choices):
        raise ValueError(f'attn_implementation must be one of {tuple(attn_choices)}, got {attn_implementation!r}')
    kwargs = dict(hf_kwargs or {})
    dtype = resolve_dtype(torch_dtype)
    if dtype == 'auto' and name_or_path is None:
        raise ValueError("torch_dtype='auto' needs name_or_path (a checkpoint)")
    if dtype is not None:
        kwargs['dtype'] = dtype
    if attn_implementation == FLASH_OR_SDPA:
        attn_implementation = flash_or_sdpa()
    if attn_implementation is not None:
        kwargs['attn_implementation'] = attn_implementation
    return kwargs


#: ``attn_implementation`` value that picks flash-attention 2 when it can run, else sdpa
FLASH_OR_SDPA = 'flash_attention_2_or_sdpa'


def flash_or_sdpa() -> str:
    """``'flash_attention_2'`` when the ``flash_attn`` package is installed and CUDA is available, else ``'sdpa'``."""
    import importlib.util
    if importlib.util.find_spec('flash_attn') is not None and torch.cuda.is_available():
        return 'flash_attention_2'
    return 'sdpa'
