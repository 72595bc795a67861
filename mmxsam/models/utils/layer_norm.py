"""LayerNorm over the channels of an NCHW map ("LN2d").

Why not reuse mmpretrain's ``LN2d``: it lives in ``mmpretrain.models.utils``,
and importing anything under ``mmpretrain.models`` imports its evaluation
metrics, which need torchvision (not installable beside the CPU torch used
here, see environment.md). mmcv and mmdet have no LN2d. On machines with
torchvision, ``norm_cfg=dict(type='mmpretrain.LN2d', eps=1e-6)`` is a drop-in
replacement (same parameters and state-dict keys).
"""
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import Tensor


# Registered in mmengine's root MODELS beside mmcv's 'LN', 'GN', 'BN', because mmcv's
# build_norm_layer looks norms up there: 'LN2d' then resolves in every scope (mmdet included).
@MMENGINE_MODELS.register_module('LN2d')
class LayerNorm2d(nn.LayerNorm):
    """(B, C, H, W) -> (B, C, H, W), normalised over C at every pixel, with a
    per-channel affine (SAM's ``LayerNorm2d``; eps 1e-6 as in SAM)."""

    def __init__(self, num_channels: int, eps: float = 1e-6,
                 elementwise_affine: bool = True) -> None:
        super().__init__(num_channels, eps=eps, elementwise_affine=elementwise_affine)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f'LayerNorm2d expects (B, C, H, W), got shape {tuple(x.shape)}')
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                         self.eps)                   # (B, H, W, C)
        return x.permute(0, 3, 1, 2).contiguous()   # (B, C, H, W)
