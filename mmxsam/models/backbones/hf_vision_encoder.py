"""Image encoder of the MLLM branch: a transformers SigLIP / SigLIP2 / CLIP vision tower.

X-SAM feeds the LLM with ``hidden_states[-2]`` of SigLIP2-so400m-patch14-384 (the output of
the penultimate encoder layer, before the post-LayerNorm), all 729 tokens. This wrapper returns
exactly that hidden state, ``(B, N, C)``, for any of three HF vision towers:

- ``siglip_vision_model`` (``SiglipVisionModel``): SigLIP and the *fixed-resolution* SigLIP2
  checkpoints. ``google/siglip2-so400m-patch14-384`` (the X-SAM encoder) is one of these: its
  config.json is a ``siglip`` model, so it loads as ``SiglipVisionModel`` as in the official code.
- ``siglip2_vision_model`` (``Siglip2VisionModel``): the NaFlex SigLIP2 checkpoints
  (``...-naflex``), whose patch embedding is a Linear over flattened patches and whose position
  embedding is resized to the patch grid. The wrapper patchifies the image itself (the
  processor's patch layout) so that the input stays ``(B, 3, H, W)``.
- ``clip_vision_model`` (``CLIPVisionModel``): CLIP, with a class token (dropped by default).

The HF transformer is held unchanged as ``self.vision_model``, so parameter names are the HF
ones (``vision_model.embeddings.*``, ``vision_model.encoder.layers.N.*``,
``vision_model.post_layernorm.*``, ``vision_model.head.*``) and X-SAM's
``visual_encoder.vision_model.*`` weights map 1:1 under a ``visual_encoder`` attribute. The
forward loop is ours: it runs only the layers up to ``select_layer`` and supports activation
checkpointing per layer; the layers after it, the post-LayerNorm and the pooling head are kept
(checkpoints load unchanged) but never run and are frozen.
"""
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from transformers import (AutoConfig, CLIPVisionConfig, CLIPVisionModel, PretrainedConfig,
                          PreTrainedModel, Siglip2VisionConfig, Siglip2VisionModel,
                          SiglipVisionConfig, SiglipVisionModel)

from ..utils.hf_utils import DType, freeze_modules, hf_model_kwargs

# vision config class -> (family, HF model class)
_TOWERS: Dict[type, Tuple[str, type]] = {
    SiglipVisionConfig: ('siglip', SiglipVisionModel),
    Siglip2VisionConfig: ('siglip2', Siglip2VisionModel),
    CLIPVisionConfig: ('clip', CLIPVisionModel),
}
_SUPPORTED = ', '.join(repr(c.model_type) for c in _TOWERS)
# from_pretrained kwargs that also locate the config (others are model-only)
_CONFIG_KWARGS = ('revision', 'cache_dir', 'local_files_only', 'token', 'subfolder',
                  'force_download', 'proxies')
ATTN_IMPLEMENTATIONS = ('eager', 'sdpa', 'flash_attention_2')
SELECT_FEATURES = ('patch', 'all')


def _vision_config(config: PretrainedConfig) -> PretrainedConfig:
    """The vision config of a vision-only or a full (vision + text) config; error if neither."""
    vision = getattr(config, 'vision_config', None)
    if vision is not None:
        config = vision
    if type(config) not in _TOWERS:
        raise ValueError(f'HFVisionEncoder supports vision towers of type {_SUPPORTED} (or a '
                         f'full SigLIP/SigLIP2/CLIP model holding one), got a '
                         f'{type(config).__name__} (model_type {config.model_type!r})')
    return config


@MODELS.register_module()
class HFVisionEncoder(BaseModule):
    """SigLIP / SigLIP2 / CLIP vision tower returning one hidden state as tokens.

    Args:
        name_or_path (str, optional): hub id (``'google/siglip2-so400m-patch14-384'``) or local
            folder of a vision-only *or* a full (vision + text) SigLIP / SigLIP2 / CLIP
            checkpoint. ``AutoConfig`` picks the tower class; a full checkpoint loads its
            ``vision_config`` and ``vision_model.*`` weights (the text tower is ignored).
        config (dict | PretrainedConfig, optional): build a randomly initialised tower
            instead: a vision config (``SiglipVisionConfig`` ...), a full config holding one,
            or a dict of its kwargs with ``model_type`` one of ``'siglip_vision_model'``,
            ``'siglip2_vision_model'``, ``'clip_vision_model'`` (or ``'siglip'``,
            ``'siglip2'``, ``'clip'`` with a ``vision_config``). Exactly one of
            ``name_or_path`` and ``config`` must be given.
        select_layer (int): which hidden state to return. Index 0 is the embedding output
            (CLIP: after its pre-LayerNorm), index i the output of layer i (1-based), so valid
            indices are ``-(L+1) .. L`` for L layers; -1 is the last layer's output *before*
            the post-LayerNorm. Default -2 (X-SAM, LLaVA).
        select_feature (str, optional): ``'patch'`` drops the class token of towers that have
            one (CLIP), ``'all'`` keeps every token. SigLIP has no class token, so both are the
            same there. Default: ``'patch'`` for CLIP, ``'all'`` for SigLIP / SigLIP2.
        interpolate_pos_encoding (bool): SigLIP / CLIP only: accept input sizes other than the
            config's ``image_size`` by interpolating the position embedding (HF's option).
            SigLIP2 (NaFlex) always resizes its position embedding to the patch grid.
        frozen (bool): freeze the whole tower (requires_grad False, eval mode kept across
            ``train()``). Default True, as in every X-SAM stage.
        with_cp (bool): activation checkpointing per layer while training (only matters with
            ``frozen=False``).
        torch_dtype (str | torch.dtype, optional): parameter dtype, e.g. 'bfloat16' ('auto':
            the checkpoint's dtype; from_pretrained only). Default float32.
        attn_implementation (str, optional): 'eager', 'sdpa' or 'flash_attention_2'
            (HF default: sdpa).
        hf_kwargs (dict, optional): extra ``from_pretrained`` kwargs (revision, cache_dir, ...).
        init_cfg (dict | list[dict], optional): mmengine init config.

    Input: pixel values (B, C, H, W), C = ``num_channels``; H = W = ``image_size`` unless
    ``interpolate_pos_encoding`` (SigLIP2: any H, W divisible by the patch size), already
    normalised by the tower's processor (SigLIP: mean = std = 0.5).
    Output: (B, N, hidden_size) in the parameters' dtype (the input is cast to it), N the
    number of patches ``(H / p) * (W / p)`` (+1 with ``select_feature='all'`` on CLIP), tokens
    row-major on the patch grid. SigLIP2-so400m-patch14-384: (B, 729, 1152).
    """

    def __init__(self,
                 name_or_path: Optional[str] = None,
                 config: Optional[Union[dict, PretrainedConfig]] = None,
                 select_layer: int = -2,
                 select_feature: Optional[str] = None,
                 interpolate_pos_encoding: bool = False,
                 frozen: bool = True,
                 with_cp: bool = False,
                 torch_dtype: Optional[DType] = None,
                 attn_implementation: Optional[str] = None,
                 hf_kwargs: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        hf_kwargs = dict(hf_kwargs or {})
        kwargs = hf_model_kwargs('HFVisionEncoder', name_or_path, config, 'a vision config or its kwargs',
                                 torch_dtype, attn_implementation, hf_kwargs, attn_choices=ATTN_IMPLEMENTATIONS)

        if name_or_path is not None:
            located = {k: v for k, v in hf_kwargs.items() if k in _CONFIG_KWARGS}
            vision_config = _vision_config(AutoConfig.from_pretrained(name_or_path, **located))
            family, model_cls = _TOWERS[type(vision_config)]
            # the tower class reads ``vision_config`` (and ``vision_model.*`` weights) out of a
            # full checkpoint by itself
            model: PreTrainedModel = model_cls.from_pretrained(name_or_path, **kwargs)
        else:
            if isinstance(config, dict):
                config = dict(config)
                model_type = config.pop('model_type', None)
                if model_type is None:
                    raise ValueError(f'config dict needs a model_type ({_SUPPORTED}), got keys '
                                     f'{sorted(config)}')
                config = AutoConfig.for_model(model_type, **config)
            elif isinstance(config, PretrainedConfig):
                config = copy.deepcopy(config)  # _from_config mutates it
            else:
                raise TypeError(f'config must be a dict or a transformers PretrainedConfig, got '
                                f'{type(config)}')
            vision_config = _vision_config(config)
            family, model_cls = _TOWERS[type(vision_config)]
            model = model_cls._from_config(vision_config, **kwargs)

        self.family = family
        self.vision_model: nn.Module = model.vision_model  # HF *VisionTransformer
        # HF already initialised (or loaded) every weight: keep mmengine's init_weights from
        # recursing into HF's (design.md §6).
        self.vision_model.is_init = True
        self.config: PretrainedConfig = model.config
        self.num_layers = len(self.layers)
        self.embed_dims: int = self.config.hidden_size
        self.patch_size: int = self.config.patch_size

        L = self.num_layers
        if isinstance(select_layer, bool) or not isinstance(select_layer, int) \
                or not -(L + 1) <= select_layer <= L:
            raise ValueError(f'select_layer must be an int in [{-(L + 1)}, {L}] for {L} layers, '
                             f'got {select_layer!r}')
        self.select_layer = select_layer % (L + 1)
        if select_feature is None:
            select_feature = 'patch' if family == 'clip' else 'all'
        if select_feature not in SELECT_FEATURES:
            raise ValueError(f'select_feature must be one of {SELECT_FEATURES}, got '
                             f'{select_feature!r}')
        self.select_feature = select_feature
        if interpolate_pos_encoding and family == 'siglip2':
            raise ValueError('interpolate_pos_encoding is for SigLIP / CLIP; SigLIP2 (NaFlex) '
                             'always resizes its position embedding to the patch grid')
        self.interpolate_pos_encoding = interpolate_pos_encoding
        self.frozen = frozen
        self.with_cp = with_cp
        self._freeze()

    @property
    def layers(self) -> nn.ModuleList:
        """The HF encoder layers (``vision_model.encoder.layers``)."""
        return self.vision_model.encoder.layers

    # ------------------------------------------------------------------ freezing
    def _frozen_modules(self) -> List[nn.Module]:
        """Frozen by request, plus what never runs (the layers after ``select_layer``, the
        post-LayerNorm, the pooling head): they could get no gradient, so freezing them keeps
        them out of the optimizer and spares DDP's ``find_unused_parameters``."""
        if self.frozen:
            return [self.vision_model]
        unused = [*self.layers[self.select_layer:], self.vision_model.post_layernorm]
        head = getattr(self.vision_model, 'head', None)
        return unused if head is None else [*unused, head]

    def _freeze(self) -> None:
        freeze_modules(self._frozen_modules())

    def train(self, mode: bool = True) -> 'HFVisionEncoder':
        super().train(mode)
        self._freeze()
        return self

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor) -> None:
        c, p = self.config.num_channels, self.patch_size
        any_size = self.family == 'siglip2' or self.interpolate_pos_encoding
        if any_size:
            expected = f'(B, {c}, H, W) with H and W multiples of the patch size {p}'
            ok = x.dim() == 4 and x.shape[1] == c and x.shape[2] % p == 0 and x.shape[3] % p == 0
        else:
            s = self.config.image_size
            expected = (f'(B, {c}, {s}, {s}) (resize to the pretrained size, or set '
                        f'interpolate_pos_encoding=True)')
            ok = x.dim() == 4 and tuple(x.shape[1:]) == (c, s, s)
        if not ok:
            raise ValueError(f'HFVisionEncoder expects pixel values of shape {expected}, got '
                             f'{tuple(x.shape)}')

    def _embed(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> embedding output (B, N (+1 CLS), D), i.e. hidden state 0."""
        embeddings = self.vision_model.embeddings
        if self.family == 'siglip2':
            # the Siglip2 processor's patch layout: (h, w) patches row-major, each flattened
            # as (p, p, C)
            b, c, h, w = x.shape
            p = self.patch_size
            gh, gw = h // p, w // p
            patches = x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1)
            patches = patches.reshape(b, gh * gw, p * p * c)  # (B, N, p*p*C)
            spatial_shapes = torch.tensor([[gh, gw]] * b, device=x.device)
            # no padding patches, so no attention mask is needed
            return embeddings(patches, spatial_shapes)
        hidden = embeddings(x, interpolate_pos_encoding=self.interpolate_pos_encoding)
        if self.family == 'clip':
            hidden = self.vision_model.pre_layrnorm(hidden)
        return hidden

    def _run_layer(self, layer: nn.Module, hidden: Tensor) -> Tensor:
        # CLIP layers take (hidden, attention_mask, causal_attention_mask) and return a
        # tuple; SigLIP / SigLIP2 layers take (hidden, attention_mask) and return a tensor.
        masks = (None, None) if self.family == 'clip' else (None, )
        out = layer(hidden, *masks)
        return out[0] if isinstance(out, tuple) else out

    def forward(self, pixel_values: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, N, D): ``hidden_states[select_layer]``, class token dropped
        with ``select_feature='patch'``."""
        self._check_input(pixel_values)
        x = pixel_values.to(self.vision_model.embeddings.patch_embedding.weight.dtype)
        hidden = self._embed(x)  # (B, N, D)
        use_cp = self.with_cp and self.training and torch.is_grad_enabled()
        for layer in self.layers[:self.select_layer]:
            if use_cp:
                hidden = checkpoint(self._run_layer, layer, hidden, use_reentrant=False)
            else:
                hidden = self._run_layer(layer, hidden)
        if self.family == 'clip' and self.select_feature == 'patch':
            hidden = hidden[:, 1:]
        return hidden
