"""X-SAM segmentation connector (convolutional bottleneck + pixel shuffle)."""
from typing import List, Optional, Sequence, Union

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmdet.registry import MODELS

from .base_connector import BaseXSAMConnector, IntOrInts, per_level


@MODELS.register_module()
class XSAMSegConnector(BaseXSAMConnector):
    """Multi-scale segmentation connector of X-SAM (paper Fig. 3).

    Level i, on SAM map (B, in_channels[i], H, W)::

        Conv1x1(in -> hidden) -> LN2d -> Conv3x3(hidden -> hidden, pad 1) -> LN2d
        -> Conv1x1(hidden -> out * s^2) -> LN2d -> pixel_shuffle(s)
        => (B, out_channels[i], H * s, W * s)

    No conv has a bias and there is no activation. Full size (SAM-L blocks
    12/18/24, each (B, 1024, 64, 64)): ``in_channels=1024, hidden_channels=512,
    out_channels=(512, 1024, 2048), scales=(2, 1, 0.5)`` gives
    (B, 512, 128, 128), (B, 1024, 64, 64), (B, 2048, 32, 32) at strides
    8/16/32 and 10,499,072 parameters.

    Args:
        in_channels (int | Sequence[int]): channels of each input map.
        hidden_channels (int | Sequence[int]): bottleneck width per level.
        out_channels (int | Sequence[int]): channels of each output map.
        scales (Sequence[float]): pixel-shuffle scale per level (powers of two).
            Defaults to (2, 1, 0.5).
        in_indices (Sequence[int], optional): which input maps feed the
            levels; None means one map per level, in order.
        norm_cfg (dict): norm after each conv, built with mmcv's
            ``build_norm_layer``. Defaults to ``LN2d``
            (:class:`mmxsam.models.utils.LayerNorm2d`, LayerNorm over the
            channels of an NCHW map) with eps 1e-6, SAM's LayerNorm epsilon.
        channel_order (str): ``'torch'`` or ``'xsam'``, see
            :func:`mmxsam.models.utils.pixel_shuffle`.
        init_cfg (dict | list[dict], optional): defaults to normal(std=0.02)
            conv weights, the official initialisation (norms: ones/zeros).
    """

    def __init__(self,
                 in_channels: IntOrInts,
                 hidden_channels: IntOrInts,
                 out_channels: IntOrInts,
                 scales: Sequence[float] = (2.0, 1.0, 0.5),
                 in_indices: Optional[Sequence[int]] = None,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 channel_order: str = 'torch',
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='Normal', layer='Conv2d', std=0.02)) -> None:
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            scales=scales,
            in_indices=in_indices,
            channel_order=channel_order,
            init_cfg=init_cfg)
        self.hidden_channels = per_level('hidden_channels', hidden_channels, self.num_levels)
        self.norm_cfg = norm_cfg
        self._init_branches()

    def _build_branch(self, level: int) -> nn.Module:
        in_c = self.in_channels[level]
        hid_c = self.hidden_channels[level]
        mid_c = self.mid_channels[level]
        # Indices 0..5 mirror the official ConvConnectorLayer.model (conv, LN, conv, LN, conv, LN).
        return nn.Sequential(
            nn.Conv2d(in_c, hid_c, kernel_size=1, bias=False),
            build_norm_layer(self.norm_cfg, hid_c)[1],
            nn.Conv2d(hid_c, hid_c, kernel_size=3, padding=1, bias=False),
            build_norm_layer(self.norm_cfg, hid_c)[1],
            nn.Conv2d(hid_c, mid_c, kernel_size=1, bias=False),
            build_norm_layer(self.norm_cfg, mid_c)[1],
        )
