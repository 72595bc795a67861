"""X-SAM MLP segmentation connector (paper Tab. 9 ablation)."""
from typing import List, Optional, Sequence, Union

import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmdet.registry import MODELS
from torch import Tensor

from .base_connector import BaseXSAMConnector, IntOrInts, per_level


class _PixelMLP(nn.Module):
    """Linear -> act -> Linear on the channels of every pixel of an NCHW map:
    (B, in, H, W) -> (B, out, H, W). ``layers.{0,2}`` mirror the official
    ``LinearConnectorLayer.model.{0,2}``."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 act_cfg: dict) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_channels, hidden_channels, bias=False),
            build_activation_layer(act_cfg),
            nn.Linear(hidden_channels, out_channels, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)          # (B, H, W, C_in)
        x = self.layers(x)                 # (B, H, W, C_out)
        return x.permute(0, 3, 1, 2).contiguous()


@MODELS.register_module()
class XSAMMLPConnector(BaseXSAMConnector):
    """Segmentation connector whose branch is a per-pixel MLP (no spatial
    context; the "MLP" row of the paper's Tab. 9).

    Level i, on SAM map (B, in_channels[i], H, W)::

        Linear(in -> hidden) -> GELU -> Linear(hidden -> out * s^2) on channels
        -> pixel_shuffle(s) => (B, out_channels[i], H * s, W * s)

    No bias, no norm (as the official ``connector_type="linear"``, whose hidden
    width is the pre-shuffle width ``in * s``, i.e. ``out * s^2`` here).
    Full size, Tab. 9 (single scale, s=1): ``in_channels=1024,
    out_channels=1024, scales=(1,)`` -> (B, 1024, 64, 64), 2,097,152 parameters.

    Args:
        in_channels (int | Sequence[int]): channels of each input map.
        out_channels (int | Sequence[int]): channels of each output map.
        scales (Sequence[float]): pixel-shuffle scale per level. Defaults to
            (2, 1, 0.5).
        hidden_channels (int | Sequence[int], optional): MLP width per level;
            None (default) uses the pre-shuffle width ``out * s^2``, as the
            official code does.
        in_indices (Sequence[int], optional): which input maps feed the levels.
        act_cfg (dict): activation between the linears. Defaults to GELU.
        channel_order (str): ``'torch'`` or ``'xsam'`` pixel-shuffle order.
        init_cfg (dict | list[dict], optional): defaults to normal(std=0.02)
            linear weights, the official initialisation.
    """

    def __init__(self,
                 in_channels: IntOrInts,
                 out_channels: IntOrInts,
                 scales: Sequence[float] = (2.0, 1.0, 0.5),
                 hidden_channels: Optional[IntOrInts] = None,
                 in_indices: Optional[Sequence[int]] = None,
                 act_cfg: dict = dict(type='GELU'),
                 channel_order: str = 'torch',
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='Normal', layer='Linear', std=0.02)) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            scales=scales,
            in_indices=in_indices,
            channel_order=channel_order,
            init_cfg=init_cfg)
        if hidden_channels is None:
            self.hidden_channels = self.mid_channels
        else:
            self.hidden_channels = per_level('hidden_channels', hidden_channels, self.num_levels)
        self.act_cfg = act_cfg
        self._init_branches()

    def _build_branch(self, level: int) -> nn.Module:
        return _PixelMLP(self.in_channels[level], self.hidden_channels[level],
                         self.mid_channels[level], self.act_cfg)
