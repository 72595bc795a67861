"""SAM ViT image encoder (transformers' ``SamVisionEncoder``) as an mmdet backbone.

The HF encoder is held unchanged as ``self.encoder``, so its parameter names are the
HF ``SamVisionEncoder`` names (``encoder.patch_embed.projection.weight``,
``encoder.pos_embed``, ``encoder.layers.N.*``, ``encoder.neck.*``) and X-SAM's
``segmentor.encoder.*`` weights map 1:1. The forward loop is ours: it keeps only the
requested hidden states, runs the neck only when asked and supports activation
checkpointing per block.
"""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor
from torch.utils.checkpoint import checkpoint
from transformers import SamVisionConfig, SamVisionModel

from ..utils.hf_utils import DType, freeze_modules, hf_model_kwargs


@MODELS.register_module()
class SAMViTBackbone(BaseModule):
    """SAM ViT encoder returning selected hidden states as NCHW maps.

    Args:
        name_or_path (str, optional): hub id (``'facebook/sam-vit-large'``) or local
            folder of a ``SamVisionModel`` *or* full ``SamModel`` checkpoint, loaded
            with ``SamVisionModel.from_pretrained``.
        config (dict | SamVisionConfig, optional): build a randomly initialised
            encoder from ``SamVisionConfig`` kwargs instead. Exactly one of
            ``name_or_path`` and ``config`` must be given.
        out_indices (Sequence[int]): hidden states to return, in this order. Index 0
            is patch embedding + position embedding, index i the output of block i
            (1-based), so valid indices are ``-(L+1) .. L`` for L blocks (-1 = L).
        with_neck (bool): also run the SAM neck on the last block's output and
            append it as the last element, shape (B, output_channels, H/p, W/p).
        frozen_stages (int): -1 freezes nothing, 0 freezes patch + position
            embedding, k > 0 also blocks 1..k. Frozen parts stay in eval mode.
        frozen (bool): freeze the whole encoder (neck included).
        with_cp (bool): activation checkpointing per block while training.
        torch_dtype (str | torch.dtype, optional): parameter dtype, e.g. 'bfloat16'
            ('auto': the checkpoint's dtype; from_pretrained only). Default float32.
        attn_implementation (str, optional): 'eager' or 'sdpa' (HF default: sdpa).
        hf_kwargs (dict, optional): extra ``from_pretrained`` kwargs (revision, ...).
        init_cfg (dict | list[dict], optional): mmengine init config.

    Input (B, C, S, S) with C = ``num_channels`` and S = ``image_size`` of the
    config (1024 for SAM): like transformers, inputs of other sizes are rejected
    (the position embeddings are not interpolated).
    Output: tuple of (B, hidden_size, S/p, S/p) tensors, one per ``out_indices``,
    in the parameters' dtype (the input is cast to it).
    """

    def __init__(self,
                 name_or_path: Optional[str] = None,
                 config: Optional[Union[dict, SamVisionConfig]] = None,
                 out_indices: Sequence[int] = (-1, ),
                 with_neck: bool = False,
                 frozen_stages: int = -1,
                 frozen: bool = False,
                 with_cp: bool = False,
                 torch_dtype: Optional[DType] = None,
                 attn_implementation: Optional[str] = None,
                 hf_kwargs: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        kwargs = hf_model_kwargs('SAMViTBackbone', name_or_path, config, 'SamVisionConfig kwargs', torch_dtype,
                                 attn_implementation, hf_kwargs, attn_choices=('eager', 'sdpa'))
        if name_or_path is not None:
            model = SamVisionModel.from_pretrained(name_or_path, **kwargs)
        else:
            if isinstance(config, dict):
                config = SamVisionConfig(**config)
            elif isinstance(config, SamVisionConfig):
                config = copy.deepcopy(config)  # _from_config mutates it
            else:
                raise TypeError(f'config must be a dict or SamVisionConfig, got {type(config)}')
            model = SamVisionModel._from_config(config, **kwargs)
        self.encoder = model.vision_encoder  # (HF SamVisionEncoder)
        # HF already initialised (or loaded) every weight: keep mmengine's
        # init_weights from recursing into HF's (design.md §6).
        self.encoder.is_init = True
        self.config: SamVisionConfig = self.encoder.config
        self.num_layers = len(self.encoder.layers)
        self.embed_dims = self.config.hidden_size

        L = self.num_layers
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        if not out_indices or not all(
                isinstance(i, int) and not isinstance(i, bool) and -(L + 1) <= i <= L
                for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty sequence of ints in '
                             f'[{-(L + 1)}, {L}] for {L} blocks, got {out_indices!r}')
        self.out_indices = tuple(i % (L + 1) for i in out_indices)
        if not -1 <= frozen_stages <= L:
            raise ValueError(f'frozen_stages must be in [-1, {L}], got {frozen_stages}')
        self.with_neck = with_neck
        self.frozen_stages = frozen_stages
        self.frozen = frozen
        self.with_cp = with_cp
        self._freeze_stages()

    def _frozen_modules(self) -> List[torch.nn.Module]:
        """Frozen by request, plus what never runs: the neck without ``with_neck`` and the blocks after
        the last requested output (they could get no gradient; freezing them spares DDP's
        ``find_unused_parameters`` and keeps them out of the optimizer)."""
        if self.frozen:
            return [self.encoder]
        unused = [] if self.with_neck else [self.encoder.neck, *self.encoder.layers[max(self.out_indices):]]
        if self.frozen_stages < 0:
            return unused
        return [self.encoder.patch_embed, *self.encoder.layers[:self.frozen_stages], *unused]

    def _freeze_stages(self) -> None:
        """requires_grad=False and eval mode for the frozen parts."""
        if self.frozen_stages >= 0 and self.encoder.pos_embed is not None:
            self.encoder.pos_embed.requires_grad_(False)
        freeze_modules(self._frozen_modules())

    def train(self, mode: bool = True) -> 'SAMViTBackbone':
        super().train(mode)
        self._freeze_stages()
        return self

    def _check_input(self, x: Tensor) -> None:
        c, s = self.config.num_channels, self.config.image_size
        if x.dim() != 4 or x.shape[1] != c or tuple(x.shape[2:]) != (s, s):
            raise ValueError(f'SAMViTBackbone expects input of shape (B, {c}, {s}, {s}) '
                             f'(pad images to the pretrained size, SAM does not interpolate '
                             f'its position embedding), got {tuple(x.shape)}')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, C, S, S) -> tuple of (B, hidden_size, S/p, S/p), one per out_index,
        plus the neck output (B, output_channels, S/p, S/p) last if ``with_neck``."""
        self._check_input(x)
        x = x.to(self.encoder.patch_embed.projection.weight.dtype)
        hidden = self.encoder.patch_embed(x)  # (B, h, w, D), channels last
        if self.encoder.pos_embed is not None:
            hidden = hidden + self.encoder.pos_embed
        wanted = set(self.out_indices)
        kept = {0: hidden} if 0 in wanted else {}
        last = self.num_layers if self.with_neck else max(self.out_indices)
        use_cp = self.with_cp and self.training and torch.is_grad_enabled()
        for i, layer in enumerate(self.encoder.layers[:last], start=1):
            if use_cp:
                hidden = checkpoint(layer, hidden, use_reentrant=False)
            else:
                hidden = layer(hidden)
            if i in wanted:
                kept[i] = hidden
        outs = [kept[i].permute(0, 3, 1, 2).contiguous() for i in self.out_indices]
        if self.with_neck:
            outs.append(self.encoder.neck(hidden))  # (B, output_channels, h, w)
        return tuple(outs)
