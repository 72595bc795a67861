"""X-SAM's pixel decoder: mmdet's deformable-attention pixel decoder with one FPN level on the finest map.

X-SAM builds HF Mask2Former's pixel decoder with ``feature_strides [8, 16, 32]`` and ``common_stride 4``
(reference §1.3). All three connector maps go through the deformable encoder, and because
``log2(min stride 8) - log2(common stride 4) = 1`` one FPN level is added: a lateral 1x1 conv on the
stride-8 map (again), summed with the encoder's stride-8 output, then ``3x3 conv + GN + ReLU``. The
mask features therefore sit at stride 8 (128x128 for a 1024 input), not 4.

mmdet's :class:`~mmdet.models.layers.MSDeformAttnPixelDecoder` sends the *last* ``num_levels`` inputs
to the encoder and the earlier ones to the FPN, so feeding it ``[c8, c8, c16, c32]`` is exactly that
structure. This class only duplicates the finest input (in the constructor and in ``forward``).
"""
from typing import List, Sequence, Tuple

import torch
from mmdet.models.layers import MSDeformAttnPixelDecoder
from mmdet.registry import MODELS
from torch import Tensor


def _to_weight_dtype(module: torch.nn.Module, args: tuple, kwargs: dict) -> Tuple[tuple, dict]:
    """Forward pre-hook: floating-point tensor arguments to the module's parameter dtype."""
    dtype = next(module.parameters()).dtype
    cast = lambda v: v.to(dtype) if isinstance(v, Tensor) and v.is_floating_point() else v  # noqa: E731
    return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}


@MODELS.register_module()
class XSAMPixelDecoder(MSDeformAttnPixelDecoder):
    """Args as :class:`MSDeformAttnPixelDecoder`, with ``in_channels``/``strides`` of the *distinct* maps.

    Args:
        in_channels (Sequence[int]): channels of the input maps, finest first, e.g. ``(512, 1024, 2048)``.
        strides (Sequence[int]): their strides, e.g. ``(8, 16, 32)``. The encoder must take
            ``len(in_channels)`` levels (``encoder.layer_cfg.self_attn_cfg.num_levels``).

    Shapes (full size, 1024 input): inputs ``[(B,512,128,128), (B,1024,64,64), (B,2048,32,32)]`` ->
    mask features ``(B, out_channels, 128, 128)`` and multi-scale features
    ``[(B,C,32,32), (B,C,64,64), (B,C,128,128)]`` (low to high resolution, ``C = feat_channels``).
    """

    def __init__(self, in_channels: Sequence[int] = (512, 1024, 2048), strides: Sequence[int] = (8, 16, 32),
                 **kwargs) -> None:
        in_channels, strides = list(in_channels), list(strides)
        if len(in_channels) != len(strides):
            raise ValueError(f'in_channels {in_channels} and strides {strides} must have the same length')
        encoder = kwargs.get('encoder')
        num_levels = encoder['layer_cfg']['self_attn_cfg']['num_levels'] if encoder else None
        if num_levels != len(in_channels):
            raise ValueError(f'XSAMPixelDecoder sends all {len(in_channels)} input maps through the encoder, so '
                             f'encoder.layer_cfg.self_attn_cfg.num_levels must be {len(in_channels)}, got {num_levels}')
        super().__init__(in_channels=[in_channels[0]] + in_channels, strides=[strides[0]] + strides, **kwargs)
        # A model cast to bf16 (DeepSpeed's bf16 mode, no autocast): mmdet builds the sine positional encodings
        # and reference points in fp32, which would turn the queries fp32 in front of bf16 layers.
        self.encoder.register_forward_pre_hook(_to_weight_dtype, with_kwargs=True)

    def forward(self, feats: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        expected = self.num_input_levels - 1
        if len(feats) != expected:
            raise ValueError(f'XSAMPixelDecoder expects {expected} feature maps (finest first), got {len(feats)}')
        return super().forward([feats[0]] + list(feats))
