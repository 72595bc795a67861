"""Pixel-shuffle + MLP projector: X-SAM's ``seg_projector`` (SAM tokens -> LLM)."""
import math
from typing import List, Optional, Tuple, Union

from mmdet.registry import MODELS
from torch import Tensor

from ..utils.pixel_shuffle import (_check_channel_order, _power_of_two_exponent, pixel_shuffle,
                                   pixel_shuffle_tokens, token_grid)
from .mlp_projector import XSAMMLPProjector


@MODELS.register_module()
class XSAMPixelShuffleProjector(XSAMMLPProjector):
    """Pixel shuffle (space to channels) of a feature grid, then an MLP.

    The map (B, C, h, w) is pixel-shuffled by ``scale`` (0.5: 2x2 neighbourhoods become
    channels, zero-padding odd sizes), flattened row-major to (B, h' * w', C / scale**2) tokens
    and projected by ``XSAMMLPProjector(C / scale**2, out_channels, ...)`` (parameters
    ``model.0.*``, ``model.2.*`` as in the official checkpoints).

    X-SAM: ``XSAMPixelShuffleProjector(1024, 3072)`` on SAM-L block 23 (index -2),
    (B, 1024, 64, 64) -> (B, 4096, 32, 32) -> (B, 1024, 3072).

    Args:
        in_channels (int): channels C of the input map (before the shuffle).
        out_channels (int): output token size.
        scale (float): pixel-shuffle scale, a power of two (0.5 in X-SAM; 1 = no shuffle).
        channel_order (str): ``'xsam'`` (the official reshape order: needed to use weights
            trained by the official code) or ``'torch'`` (``F.pixel_unshuffle``); see
            ``mmxsam.models.utils.pixel_shuffle``.
        hidden_channels, depth, act_cfg, bias, init_cfg: as in :class:`XSAMMLPProjector`.

    Input: (B, C, h, w) maps (NCHW, what ``SAMViTBackbone`` returns) or (B, h * w, C) tokens
    row-major on the grid (pass ``grid_size=(h, w)``; a square grid is assumed otherwise).
    Output: (B, h' * w', out_channels), h' = ceil(h * scale), w' = ceil(w * scale)
    (see :meth:`output_grid`), row-major on the h' x w' grid.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scale: float = 0.5,
                 channel_order: str = 'xsam',
                 hidden_channels: Optional[int] = None,
                 depth: int = 2,
                 act_cfg: dict = dict(type='GELU'),
                 bias: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        _check_channel_order(channel_order)
        k = _power_of_two_exponent(scale)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'XSAMPixelShuffleProjector: in_channels must be a positive int, '
                             f'got {in_channels!r}')
        if k > 0 and in_channels % 4**k:
            raise ValueError(f'XSAMPixelShuffleProjector: scale {scale} needs in_channels '
                             f'divisible by {4**k}, got {in_channels}')
        shuffled = in_channels * 4**(-k) if k <= 0 else in_channels // 4**k
        super().__init__(shuffled, out_channels, hidden_channels=hidden_channels,
                         depth=depth, act_cfg=act_cfg, bias=bias, init_cfg=init_cfg)
        self.map_channels = in_channels  # C of the input map; self.in_channels is C / scale**2
        self.scale = scale
        self.channel_order = channel_order

    def output_grid(self, h: int, w: int) -> Tuple[int, int]:
        """Token grid (h', w') produced from an h x w input grid."""
        s = float(self.scale)
        return (h * int(s), w * int(s)) if s >= 1 else (math.ceil(h * s), math.ceil(w * s))

    def forward(self, x: Tensor, grid_size: Optional[Tuple[int, int]] = None) -> Tensor:
        """(B, C, h, w) or (B, h * w, C) -> (B, h' * w', out_channels)."""
        c = self.map_channels
        if x.dim() == 3:
            h, w = token_grid(x.shape[1], grid_size, 'XSAMPixelShuffleProjector')
            if x.shape[2] != c:
                raise ValueError(f'XSAMPixelShuffleProjector expects (B, {h}*{w}, {c}) tokens, '
                                 f'got shape {tuple(x.shape)}')
            x, _ = pixel_shuffle_tokens(x, h, w, self.scale, channel_order=self.channel_order)
        elif x.dim() == 4 and x.shape[1] == c:
            x = pixel_shuffle(x, self.scale, channel_order=self.channel_order)  # (B, C', h', w')
            x = x.flatten(2).transpose(1, 2)  # (B, h' * w', C')
        else:
            raise ValueError(f'XSAMPixelShuffleProjector expects (B, {c}, h, w) maps (NCHW) or '
                             f'(B, h*w, {c}) tokens, got shape {tuple(x.shape)}')
        return self.model(x)
