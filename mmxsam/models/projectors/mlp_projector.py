"""MLP projector: X-SAM's ``visual_projector`` (SigLIP -> LLM) and ``llm_projector``
(LLM -> mask decoder)."""
from typing import List, Optional, Union

from mmcv.cnn import build_activation_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class XSAMMLPProjector(BaseModule):
    """``depth`` Linear layers with an activation between each pair (X-SAM's
    ``DynamicProjectorModel``).

    Depth 2: ``Linear(in, hidden) -> act -> Linear(hidden, out)``; depth d > 2 inserts
    ``d - 2`` more ``act -> Linear(hidden, hidden)``; depth 1 is ``Linear(in, out)``.
    The layers are ``self.model`` (an ``nn.Sequential``), so the parameter names are the
    official ones (``model.0.*``, ``model.2.*``).

    X-SAM (hidden = out, the default):

    - visual projector: ``XSAMMLPProjector(1152, 3072)``, (B, 729, 1152) -> (B, 729, 3072).
    - llm projector: ``XSAMMLPProjector(3072, 256)``, (B, L, 3072) -> (B, L, 256).

    Args:
        in_channels (int): input feature size.
        out_channels (int): output feature size.
        hidden_channels (int, optional): width of the hidden layers. Default: ``out_channels``
            (the official projector).
        depth (int): number of Linear layers, >= 1. Default 2.
        act_cfg (dict): activation between the Linear layers. Default GELU (exact erf form,
            as HF's ``ACT2FN['gelu']`` used by the official code).
        bias (bool): Linear biases. Default True.
        init_cfg (dict | list[dict], optional): mmengine init config (default: PyTorch's
            Linear init).

    Input: (..., in_channels). Output: (..., out_channels).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 hidden_channels: Optional[int] = None,
                 depth: int = 2,
                 act_cfg: dict = dict(type='GELU'),
                 bias: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        hidden_channels = out_channels if hidden_channels is None else hidden_channels
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels),
                            ('hidden_channels', hidden_channels), ('depth', depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{type(self).__name__}: {name} must be a positive int, got '
                                 f'{value!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.depth = depth
        widths = [in_channels] + [hidden_channels] * (depth - 1) + [out_channels]
        layers: List[nn.Module] = [nn.Linear(widths[0], widths[1], bias=bias)]
        for c_in, c_out in zip(widths[1:-1], widths[2:]):
            layers += [build_activation_layer(act_cfg), nn.Linear(c_in, c_out, bias=bias)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(..., in_channels) -> (..., out_channels)."""
        if x.shape[-1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects (..., {self.in_channels}) inputs, '
                             f'got shape {tuple(x.shape)}')
        return self.model(x)
