"""Single-scale X-SAM segmentation connector (paper Tab. 9 ablation)."""
from typing import List, Optional, Sequence, Union

from mmdet.registry import MODELS
from torch import Tensor

from .seg_connector import XSAMSegConnector


@MODELS.register_module()
class XSAMSingleScaleConnector(XSAMSegConnector):
    """The convolutional connector with one level (the "Con., no M-Scale" row
    of the paper's Tab. 9): one SAM map through the same
    Conv1x1 -> LN2d -> Conv3x3 -> LN2d -> Conv1x1 -> LN2d -> pixel_shuffle(s)
    branch as :class:`XSAMSegConnector`, output as a 1-tuple.

    Full size: ``in_channels=1024, hidden_channels=512, out_channels=1024,
    scale=1, in_index=-1`` (SAM block 24, stride 16) -> ((B, 1024, 64, 64),),
    3,411,968 parameters.

    Args:
        in_channels (int): channels of the selected input map.
        hidden_channels (int): bottleneck width.
        out_channels (int): channels of the output map.
        scale (float): pixel-shuffle scale (power of two). Defaults to 1.
        in_index (int): which map of the input sequence to use. Defaults to
            -1 (the last, i.e. the deepest SAM block).
        norm_cfg, channel_order, init_cfg: as in :class:`XSAMSegConnector`.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int,
                 out_channels: int,
                 scale: float = 1.0,
                 in_index: int = -1,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 channel_order: str = 'torch',
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='Normal', layer='Conv2d', std=0.02)) -> None:
        for name, value in (('in_channels', in_channels), ('hidden_channels', hidden_channels),
                            ('out_channels', out_channels), ('in_index', in_index)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f'{name} must be an int for a single-scale connector, '
                                f'got {value!r}')
        super().__init__(
            in_channels=in_channels,
            hidden_channels=hidden_channels,
            out_channels=out_channels,
            scales=(scale, ),
            in_indices=(in_index, ),
            norm_cfg=norm_cfg,
            channel_order=channel_order,
            init_cfg=init_cfg)

    def _select_inputs(self, inputs: Union[Tensor, Sequence[Tensor]]) -> List[Tensor]:
        """Accept one (B, C, H, W) map as is, or pick ``in_index`` from a
        list/tuple of SAM maps."""
        if isinstance(inputs, Tensor):
            return [inputs]
        return super()._select_inputs(inputs)
