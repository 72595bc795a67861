"""Any Hugging Face causal LM (Phi-3-mini for X-SAM) with its tokenizer, X-SAM's tokens and LoRA.

The HF model is held as ``self.model`` (``Phi3ForCausalLM`` ...; a peft ``PeftModelForCausalLM``
around it when ``lora`` is set), so an official X-SAM ``llm.<name>`` weight is ``llm.model.<name>``
here. The wrapper only takes and returns embeddings: the MLLM builds ``inputs_embeds`` (text
embeddings from :meth:`get_input_embeddings` with visual tokens spliced in) and reads hidden states.
"""
from typing import List, Mapping, Optional, Union

import torch
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..utils.hf_utils import DType, hf_model_kwargs
from .chat_template import ChatTemplate, ChatTemplateLike, get_chat_template
from .constants import PHRASE_END_TOKEN, PHRASE_START_TOKEN, SEG_TOKEN
from .conversation import build_tokenizer

#: keys of the ``lora`` dict -> their defaults
LORA_DEFAULTS = dict(r=8, alpha=16, dropout=0.05, target_modules='all-linear', bias='none',
                     modules_to_save=None, train_new_tokens=True)


def _module_name(model: nn.Module, module: nn.Module) -> str:
    return next(n for n, m in model.named_modules() if m is module)


@MODELS.register_module()
class HFCausalLM(BaseModule):
    """A HF causal LM plus tokenizer, with ``<SEG>``, ``<p>``, ``</p>`` added and embeddings resized.

    Args:
        name_or_path (str, optional): hub id or folder, loaded with
            ``AutoModelForCausalLM.from_pretrained`` (e.g. ``'microsoft/Phi-3-mini-4k-instruct'``).
        config (dict | PretrainedConfig, optional): build a randomly initialised model instead, from
            ``dict(model_type='phi3', hidden_size=..., ...)`` (``AutoConfig.for_model``) or a config
            object. Exactly one of ``name_or_path`` and ``config``.
        tokenizer (dict | tokenizer, optional): ``dict(name_or_path=..., **AutoTokenizer kwargs)`` or
            a tokenizer instance (modified in place). X-SAM's tokens are added to it and the
            embeddings resized to ``len(tokenizer)``. ``None``: no tokenizer, no tokens added,
            ``seg_token_id`` etc. are ``None``; the embeddings are resized only to ``vocab_size``.
        chat_template (str | dict | ChatTemplate): its stop words end :meth:`generate`.
        vocab_size (int, optional): embedding rows when ``tokenizer`` is None (e.g. 32014 to build
            full-size Phi-3 without its tokenizer). Not allowed together with a tokenizer.
        pad_to_multiple_of (int, optional): round the resized vocabulary up to a multiple of this.
            Default ``None`` = X-SAM: Phi-3-mini's embeddings have 32064 rows (padded) but its
            tokenizer 32011 tokens, so ``resize_token_embeddings(32014)`` *shrinks* them and the
            three new tokens reuse the (untrained) padding rows 32011..32013. ``64`` keeps 32064.
            When the vocabulary grows, HF initialises new rows from the old rows' mean/covariance.
        torch_dtype (str | torch.dtype, optional): parameter dtype (``'bfloat16'`` for X-SAM;
            ``'auto'``: the checkpoint's, ``name_or_path`` only). Default float32.
        attn_implementation (str, optional): ``'eager'``, ``'sdpa'``, ``'flash_attention_2'``, or
            ``'flash_attention_2_or_sdpa'`` (flash-attention 2 when ``flash_attn`` is installed and CUDA
            is available, else sdpa). Default: transformers' (sdpa).
        gradient_checkpointing (bool): HF activation checkpointing (non-reentrant).
        freeze (bool): freeze every LLM weight (kept in eval mode). Exclusive with ``lora``.
        lora (dict, optional): train LoRA adapters on a frozen base; keys (defaults) ``r`` (8),
            ``alpha`` (16), ``dropout`` (0.05), ``target_modules`` ('all-linear': every linear layer
            but the LM head), ``bias`` ('none'), ``modules_to_save`` (None: more fully trained
            modules), ``train_new_tokens`` (True: the rows of ``<SEG>``, ``<p>``, ``</p>`` in the input
            embeddings and the LM head stay trainable through peft's ``trainable_token_indices``;
            only those rows, the rest of both matrices stays frozen).
        hf_kwargs (dict, optional): extra ``from_pretrained``/``from_config`` kwargs
            (``revision``, ``trust_remote_code``, ...).
        init_cfg (dict, optional): mmengine init config (HF weights are never re-initialised).

    Attributes:
        model: the HF (or peft) model. tokenizer: the tokenizer or ``None``.
        chat_template (ChatTemplate). hidden_size (int). seg_token_id, p_start_id, p_end_id (int |
        None). stop_token_ids (list[int]): template stop words + the tokenizer's EOS.
    """

    def __init__(self,
                 name_or_path: Optional[str] = None,
                 config: Optional[Union[dict, object]] = None,
                 tokenizer: Optional[Union[dict, object]] = None,
                 chat_template: ChatTemplateLike = 'phi3',
                 vocab_size: Optional[int] = None,
                 pad_to_multiple_of: Optional[int] = None,
                 torch_dtype: Optional[DType] = None,
                 attn_implementation: Optional[str] = None,
                 gradient_checkpointing: bool = False,
                 freeze: bool = False,
                 lora: Optional[dict] = None,
                 hf_kwargs: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        hf_load_kwargs = hf_model_kwargs('HFCausalLM', name_or_path, config, 'a dict with model_type',
                                         torch_dtype, attn_implementation, hf_kwargs)
        if tokenizer is not None and vocab_size is not None:
            raise ValueError('vocab_size is only for tokenizer=None (with a tokenizer the vocabulary '
                             f'is len(tokenizer)), got vocab_size={vocab_size!r}')
        for arg, value in (('vocab_size', vocab_size), ('pad_to_multiple_of', pad_to_multiple_of)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f'{arg} must be a positive int or None, got {value!r}')
        if pad_to_multiple_of is not None and tokenizer is None and vocab_size is None:
            raise ValueError('pad_to_multiple_of needs a resize: give a tokenizer or vocab_size')
        if freeze and lora is not None:
            raise ValueError('freeze=True and lora are exclusive (LoRA already freezes the base model)')
        self.chat_template: ChatTemplate = get_chat_template(chat_template)
        self.freeze = freeze

        model = self._build_model(name_or_path, config, hf_load_kwargs)
        self.tokenizer = None if tokenizer is None else build_tokenizer(tokenizer)
        if self.tokenizer is not None:
            vocab_size = len(self.tokenizer)
        if vocab_size is not None:
            # on the meta device (parameter counting, trainable-only export) new rows cannot be initialised from
            # the mean of the old ones (HF computes their covariance with .item())
            on_meta = model.get_input_embeddings().weight.is_meta
            model.resize_token_embeddings(vocab_size, pad_to_multiple_of=pad_to_multiple_of, mean_resizing=not on_meta)
        model.config.use_cache = False  # training default; generate() turns the cache on
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=False))

        self.seg_token_id = self.p_start_id = self.p_end_id = None
        self.stop_token_ids: List[int] = []
        if self.tokenizer is not None:
            self.seg_token_id, self.p_start_id, self.p_end_id = (
                self.tokenizer.convert_tokens_to_ids(t)
                for t in (SEG_TOKEN, PHRASE_START_TOKEN, PHRASE_END_TOKEN))
            self.stop_token_ids = self._stop_ids()

        if freeze:
            model.requires_grad_(False)
            model.eval()
        if lora is not None:
            model = self._wrap_lora(model, lora)
        self._has_lora = lora is not None
        self.model = model
        # HF already initialised (or loaded) every weight: keep mmengine's init_weights from
        # recursing into HF's (design.md §6).
        self.model.is_init = True

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _build_model(name_or_path, config, kwargs) -> nn.Module:
        """``kwargs``: from :func:`hf_model_kwargs` (dtype, attn_implementation, extras)."""
        from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig
        if name_or_path is not None:
            return AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
        if isinstance(config, Mapping):
            cfg = dict(config)
            model_type = cfg.pop('model_type', None)
            if not isinstance(model_type, str):
                raise ValueError(f"config needs 'model_type' (e.g. 'phi3'), got {config!r}")
            config = AutoConfig.for_model(model_type, **cfg)
        elif isinstance(config, PretrainedConfig):
            config = config.__class__.from_dict(config.to_dict())  # from_config may mutate it
        else:
            raise TypeError(f'config must be a dict or PretrainedConfig, got {type(config).__name__}')
        return AutoModelForCausalLM.from_config(config, **kwargs)

    def _stop_ids(self) -> List[int]:
        ids = []
        for word in self.chat_template.stop_words:
            word_ids = self.tokenizer.encode(word, add_special_tokens=False)
            if len(word_ids) != 1:
                raise ValueError(f'stop word {word!r} of chat template {self.chat_template.name!r} '
                                 f'is not a single token of the tokenizer (got ids {word_ids})')
            ids.append(word_ids[0])
        eos = self.tokenizer.eos_token_id
        if eos is not None and eos not in ids:
            ids.append(eos)
        return ids

    def _wrap_lora(self, model: nn.Module, lora: dict) -> nn.Module:
        from peft import LoraConfig, get_peft_model
        if not isinstance(lora, Mapping):
            raise TypeError(f'lora must be a dict, got {type(lora).__name__}')
        unknown = sorted(set(lora) - set(LORA_DEFAULTS))
        if unknown:
            raise ValueError(f'unknown lora key(s) {unknown}; valid: {sorted(LORA_DEFAULTS)}')
        opts = {**LORA_DEFAULTS, **lora}
        token_indices = None
        if opts['train_new_tokens'] and self.seg_token_id is not None:
            ids = [self.seg_token_id, self.p_start_id, self.p_end_id]
            token_indices = {_module_name(model, model.get_input_embeddings()): ids}
            if not model.config.tie_word_embeddings:  # tied: peft ties the LM head to the embedding
                token_indices[_module_name(model, model.get_output_embeddings())] = ids
        peft_config = LoraConfig(
            r=opts['r'],
            lora_alpha=opts['alpha'],
            lora_dropout=opts['dropout'],
            target_modules=opts['target_modules'],
            bias=opts['bias'],
            modules_to_save=opts['modules_to_save'],
            trainable_token_indices=token_indices,
            task_type='CAUSAL_LM')
        return get_peft_model(model, peft_config)

    # ------------------------------------------------------------------ properties
    @property
    def hf_model(self) -> nn.Module:
        """The transformers model (under the peft wrapper when LoRA is on)."""
        return self.model.get_base_model() if self.has_lora else self.model

    @property
    def has_lora(self) -> bool:
        """Whether ``self.model`` is the peft LoRA wrapper (False after :meth:`merge_lora`)."""
        return self._has_lora

    @property
    def config(self):
        """The HF config (``vocab_size`` is the resized one)."""
        return self.hf_model.config

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def dtype(self) -> torch.dtype:
        return self.get_input_embeddings().weight.dtype

    def get_input_embeddings(self) -> nn.Module:
        """The token embedding, ids (B, L) -> (B, L, hidden_size) (with LoRA: the peft wrapper that
        applies the trainable new-token rows)."""
        return self.model.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.model.get_output_embeddings()

    def train(self, mode: bool = True) -> 'HFCausalLM':
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    # ------------------------------------------------------------------ compute
    def forward(self,
                inputs_embeds: Tensor,
                attention_mask: Optional[Tensor] = None,
                labels: Optional[Tensor] = None,
                output_hidden_states: bool = True):
        """Run the LM on embeddings.

        Args:
            inputs_embeds: (B, L, hidden_size), cast to the model dtype.
            attention_mask: (B, L), 1 for real tokens (right padding).
            labels: (B, L) token ids, -100 where not supervised, *not* shifted (HF shifts them).
            output_hidden_states: also return ``hidden_states``, a tuple of num_layers + 1 tensors
                (B, L, hidden_size); the last is after the final norm.

        Returns:
            HF ``CausalLMOutputWithPast``: ``logits`` (B, L, V), ``loss`` (mean CE over supervised
            tokens, computed in fp32 by HF) when labels are given, ``hidden_states``.
        """
        return self.model(
            inputs_embeds=inputs_embeds.to(self.dtype),
            attention_mask=attention_mask,
            labels=labels,
            output_hidden_states=output_hidden_states,
            use_cache=False,
            return_dict=True)

    @torch.no_grad()
    def generate(self,
                 inputs_embeds: Tensor,
                 attention_mask: Optional[Tensor] = None,
                 max_new_tokens: int = 256,
                 output_hidden_states: bool = False):
        """Greedy decoding from prompt embeddings, stopping at the template's stop words or EOS.

        Args:
            inputs_embeds: (B, L, hidden_size) prompt embeddings (right-padded prompts need
                ``attention_mask``; left padding is what HF expects for batched generation).
            attention_mask: (B, L); default all ones.
            max_new_tokens: the most tokens to generate.
            output_hidden_states: also return per-step hidden states (``hidden_states[t][layer]``,
                (B, L, H) at step 0, (B, 1, H) after).

        Returns:
            HF ``GenerateDecoderOnlyOutput``: ``sequences`` (B, T) holds only the new tokens (the
            stop token included; finished rows are padded with the pad id).
        """
        from transformers import GenerationConfig
        if self.tokenizer is None:
            raise RuntimeError('generate() needs a tokenizer (HFCausalLM(tokenizer=...)) for the '
                               'stop and pad tokens')
        if attention_mask is None:
            attention_mask = inputs_embeds.new_ones(inputs_embeds.shape[:2], dtype=torch.long)
        pad = self.tokenizer.pad_token_id
        gen_config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=self.stop_token_ids,
            pad_token_id=self.stop_token_ids[0] if pad is None else pad,
            bos_token_id=self.tokenizer.bos_token_id,
            use_cache=True,
            output_hidden_states=output_hidden_states,
            return_dict_in_generate=True)
        return self.model.generate(
            inputs_embeds=inputs_embeds.to(self.dtype),
            attention_mask=attention_mask,
            generation_config=gen_config)

    def merge_lora(self) -> nn.Module:
        """Fold the LoRA adapters (and trained token rows) into the base weights, drop peft and
        return the plain HF model (``self.model`` becomes it), e.g. for export with
        ``save_pretrained``."""
        if not self.has_lora:
            raise RuntimeError('merge_lora() needs a model built with lora=dict(...)')
        self.model = self.model.merge_and_unload()
        self.model.is_init = True
        self._has_lora = False
        return self.model
