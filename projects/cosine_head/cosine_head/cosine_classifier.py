"""A user plugin: a cosine classifier for X-SAM's linear (stage-1) head.

Instead of ``Linear(C, K + 1)``, class logits are ``scale * cos(query, w_k)`` with learned class vectors
``w_k`` (a common trick for long-tailed or few-shot label sets). Everything else (pixel decoder,
decoder, matching, losses, post-processing) is inherited from mmxsam's head.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from mmxsam.models.heads import XSAMMask2FormerHead


class CosineLinear(nn.Module):
    """``(..., C) -> (..., K)`` logits ``scale * cos(x, w_k)``."""

    def __init__(self, in_features: int, out_features: int, scale: float = 10.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * in_features ** -0.5)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * F.linear(F.normalize(x, dim=-1), F.normalize(self.weight, dim=-1))


@MODELS.register_module()
class CosineMask2FormerHead(XSAMMask2FormerHead):
    """:class:`XSAMMask2FormerHead` in linear mode with a :class:`CosineLinear` class table.

    Args:
        cosine_scale (float): the logit scale. Defaults to 10.
        **kwargs: :class:`XSAMMask2FormerHead` arguments (``cls_mode`` must stay ``'linear'``).
    """

    def __init__(self, *args, cosine_scale: float = 10.0, **kwargs) -> None:
        if kwargs.get('cls_mode', 'linear') != 'linear':
            raise ValueError('CosineMask2FormerHead replaces the linear class table; cls_mode must be "linear"')
        super().__init__(*args, **kwargs)
        self.cls_embed = CosineLinear(self.decoder_embed_dims, self.num_classes + 1, cosine_scale)
