"""Floating-point types a converted/exported checkpoint can be written in, and the cast itself."""
from typing import Dict, Optional

import torch

#: ``--dtype`` choices of tools/model_converters (deepspeed_to_pth.py, export_trainable.py)
CHECKPOINT_DTYPES = dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)


def cast_floating(state_dict: Dict[str, torch.Tensor], dtype: Optional[torch.dtype]) -> Dict[str, torch.Tensor]:
    """Floating-point tensors cast to ``dtype`` (None: unchanged); integer/bool tensors (buffers) kept."""
    if dtype is None:
        return state_dict
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
