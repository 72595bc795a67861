"""Plan GPU memory for training an X-SAM config: parameters, model states per ZeRO stage, activations.

The config's model is built on the **meta** device (no memory, no weights; hub models that are not local
folders are built from their public architectures, ``bench_utils.HUB_ARCHITECTURES``), cast to bf16 and put in
training mode, so the freezing of the config (``frozen_modules``, ``llm.freeze``, ``vision_encoder.frozen``,
``backbone.frozen``, parts that never run) decides what is trainable. Reported:

* **parameters** per top-level module, all and trainable;
* **model states per GPU** at ``--gpus`` GPUs, bf16 mixed precision with AdamW, P_t trainable and P_f frozen
  parameters. DeepSpeed's own estimators give the trainable part (``deepspeed.runtime.zero.stage_1_and_2.
  estimate_zero2_model_states_mem_needs`` and ``deepspeed.runtime.zero.stage3.
  estimate_zero3_model_states_mem_needs``, no offload: 2 bytes of bf16 weights per parameter plus 18 bytes
  of bf16 + fp32 gradients, fp32 master weights and Adam's two moments, partitioned over the GPUs; ZeRO-3
  also partitions the bf16 weights and adds 4 bytes x the largest layer); frozen parameters add their bf16
  weights (2 P_f, partitioned by ZeRO-3 only)::

      ZeRO-2: estimate_zero2(P_t, N)            + 2 P_f      = 2 P_t + 18 P_t / N + 2 P_f
      ZeRO-3: estimate_zero3(P_t, largest, N)   + 2 P_f / N  = 4 largest + 18 P_t / N + 2 P_f / N
      DDP:    estimate_zero2(P_t, 1)            + 2 P_f      = 20 P_t + 2 P_f   (nothing partitioned)

* **activations per sample**: the bytes of the tensors autograd saves for the backward pass, *measured* by
  running one sample's forward on the meta device under ``torch.autograd.graph.saved_tensors_hooks`` (each
  storage counted once, parameters excluded): the encoders (SAM + SigLIP + projectors) at the model's input
  sizes, the LLM over ``visual tokens + text tokens`` with the LM loss, and the decoder (connector, pixel
  decoder, masked-attention decoder, llm_projector). The visual token count comes from the model (SigLIP
  tokens + SAM tokens after the pixel shuffle), not from a constant. Three settings: no activation
  checkpointing, the config's (``llm.gradient_checkpointing``, ``vision_encoder.with_cp``,
  ``backbone.with_cp``) and all three on; with checkpointing the largest checkpointed block's activations
  (recomputed during the backward pass) are added. ``F.scaled_dot_product_attention`` is counted as flash
  attention (q, k, v, output and the row log-sum-exp saved; ``--attention math`` counts the attention
  matrix, as SDPA's math kernel and eager attention do). Transient buffers of the backward pass and the
  allocator's fragmentation are not included: keep ~10-20 % headroom.
* **sequence length per task**: text tokens measured by the config's own training pipeline on up to
  ``--samples-per-task`` samples per source (mean and max) when the data exist, else the packing budget
  (``PackXSAMInputs.max_length``, the worst case); ``--seq-len`` overrides (``N`` for every task, or
  ``task=N``). Sequence = text tokens + visual tokens per ``<image>`` + one per ``<region>``.

Per GPU total = model states + micro-batch x activations (the config's checkpointing).

Examples::

    python tools/analysis_tools/plan_memory.py configs/xsam/mixed.py --gpus 16 --micro-batch 4
    python tools/analysis_tools/plan_memory.py configs/xsam/align_pretrain.py --gpus 16 --micro-batch 4
    python tools/analysis_tools/plan_memory.py configs/xsam/tiny_mixed.py --gpus 1 --json
"""
import argparse
import math
import os.path as osp
import sys
from contextlib import contextmanager
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_utils import (CommandLineError, add_cfg_options, count_params, human_bytes, load_config,  # noqa: E402
                         markdown_table, resolve_hub_models, run_tool, top_level_params)

TASKS = ('imgconv', 'genseg', 'ovseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg', 'intseg')
CP_MODES = ('none', 'config', 'full')
IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX = -200, -300


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Parameters, model states per ZeRO stage and activation memory '
                                'of an X-SAM config (built on the meta device)')
    p.add_argument('config')
    p.add_argument('--gpus', type=int, default=16, help='data-parallel GPUs (default 16)')
    p.add_argument('--micro-batch', type=int, default=None,
                   help='samples per GPU per step (default: the config train_dataloader.batch_size)')
    p.add_argument('--seq-len', nargs='+', default=None, metavar='N|TASK=N',
                   help='text tokens per sample: one number for every task and/or task=N pairs')
    p.add_argument('--samples-per-task', type=int, default=16,
                   help='samples per data source read to measure text lengths (default 16; 0: use the budget)')
    p.add_argument('--attention', choices=('flash', 'math'), default='flash',
                   help='how F.scaled_dot_product_attention saves activations (default flash)')
    p.add_argument('--tokenizer', help='tokenizer folder replacing every tokenizer of the config')
    p.add_argument('--data-root', help="replace the config's data_root (e.g. data/shapes/) by this folder")
    p.add_argument('--skip-activations', action='store_true',
                   help='parameters and model states only (no forward passes)')
    p.add_argument('--json', action='store_true', help='print the results as JSON instead of tables')
    p.add_argument('--out', help='also write the JSON results to this file')
    add_cfg_options(p)
    args = p.parse_args(argv)
    if args.gpus < 1:
        raise CommandLineError(f'--gpus must be >= 1, got {args.gpus}')
    if args.micro_batch is not None and args.micro_batch < 1:
        raise CommandLineError(f'--micro-batch must be >= 1, got {args.micro_batch}')
    args.seq_overrides = parse_seq_len(args.seq_len)
    return args


def parse_seq_len(items: Optional[List[str]]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for item in items or []:
        task, _, value = item.rpartition('=')
        task = task or '*'
        if task != '*' and task not in TASKS:
            raise CommandLineError(f'--seq-len: unknown task {task!r} (tasks: {TASKS})')
        if not value.isdigit() or int(value) < 1:
            raise CommandLineError(f'--seq-len: {item!r} is not N or task=N with N >= 1')
        out[task] = int(value)
    return out


# --------------------------------------------------------------------------------------------- building
def build_on_meta(cfg, notes: List[str]):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    import mmxsam  # noqa: F401
    notes += resolve_hub_models(cfg.model)
    cfg.model.init_cfg = None  # nothing is loaded
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from transformers import PreTrainedModel
    original = PreTrainedModel._init_added_embeddings_weights_with_mean
    # a grown vocabulary initialises its new rows from the old rows' statistics (data-dependent checks that
    # the meta device cannot run); values do not matter here
    PreTrainedModel._init_added_embeddings_weights_with_mean = lambda self, *args, **kwargs: None
    try:
        with torch.device('meta'):
            model = MODELS.build(cfg.model)
    finally:
        PreTrainedModel._init_added_embeddings_weights_with_mean = original
    model.train()  # freezing survives train() (XSAM and the HF wrappers re-freeze)
    return model


def largest_layer_params(model: torch.nn.Module) -> int:
    """DeepSpeed's 'largest layer': the most parameters held directly by one module."""
    return max((sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules()), default=0)


def model_states(p_train: int, p_frozen: int, largest: int, gpus: int) -> Dict[str, dict]:
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs
    z2 = estimate_zero2_model_states_mem_needs(p_train, num_gpus_per_node=gpus, num_nodes=1, cpu_offload=False)[1]
    z3 = estimate_zero3_model_states_mem_needs(p_train, largest, num_gpus_per_node=gpus, num_nodes=1,
                                               cpu_offload=False, cpu_offload_params=False)[1]
    ddp = estimate_zero2_model_states_mem_needs(p_train, num_gpus_per_node=1, num_nodes=1, cpu_offload=False)[1]
    return dict(
        ddp=dict(bytes=int(ddp + 2 * p_frozen), formula='20 P_t + 2 P_f'),
        zero2=dict(bytes=int(z2 + 2 * p_frozen), formula='2 P_t + 18 P_t / N + 2 P_f'),
        zero3=dict(bytes=int(z3 + math.ceil(2 * p_frozen / gpus)), formula='4 largest + 18 P_t / N + 2 P_f / N'))


# ------------------------------------------------------------------------------------------ activations
class _FlashSDPA(torch.autograd.Function):
    """Stands in for SDPA while measuring: the memory of flash attention (q, k, v, out, log-sum-exp saved)."""

    @staticmethod
    def forward(ctx, q, k, v):
        out = torch.empty(q.shape[:-1] + (v.shape[-1], ), dtype=q.dtype, device=q.device)
        lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):  # never run (meta device)
        q, k, v, _, _ = ctx.saved_tensors
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)


class _MetaAutocast(torch.autocast):
    """``torch.autocast(device_type='meta')`` (HF rotary embeddings open one on the input's device) as the
    CPU's, which the meta device does not have."""

    def __init__(self, device_type, *args, **kwargs):
        super().__init__('cpu' if device_type == 'meta' else device_type, *args, **kwargs)


@contextmanager
def meta_autocast():
    original = torch.autocast
    torch.autocast = _MetaAutocast
    try:
        yield
    finally:
        torch.autocast = original


@contextmanager
def flash_sdpa(enabled: bool):
    original = F.scaled_dot_product_attention
    if enabled:
        def sdpa(q, k, v, *args, **kwargs):
            if k.shape[-3] != q.shape[-3]:  # grouped-query attention: flash reads the shared k/v heads
                rep = q.shape[-3] // k.shape[-3]
                k = k.repeat_interleave(rep, dim=-3)
                v = v.repeat_interleave(rep, dim=-3)
            return _FlashSDPA.apply(q, k, v)
        F.scaled_dot_product_attention = sdpa
        torch.nn.functional.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
        torch.nn.functional.scaled_dot_product_attention = original


class SavedTensorMeter:
    """Bytes of distinct storages saved for backward (parameters excluded), per component and per block."""

    def __init__(self, model: torch.nn.Module, blocks: Dict[str, List[torch.nn.Module]],
                 float_bytes: Optional[int] = None) -> None:
        self.float_bytes = float_bytes  # count floating-point storages at this element size
        self.exclude = {p.untyped_storage()._cdata for p in model.parameters()}
        self.seen = set()
        self.keep = []
        self.component = 'other'
        self.by_component: Dict[str, int] = {}
        self.block_bytes: Dict[str, List[int]] = {}
        self._block: Optional[tuple] = None
        self._handles = []
        for name, mods in blocks.items():
            for m in mods:
                self._handles.append(m.register_forward_pre_hook(self._enter(name)))
                self._handles.append(m.register_forward_hook(self._leave))

    def _enter(self, name):
        def hook(module, args):
            if self._block is None:
                self._block = (name, [0])
        return hook

    def _leave(self, module, args, out):
        if self._block is not None and self._block[0] is not None:
            name, acc = self._block
            self.block_bytes.setdefault(name, []).append(acc[0])
        self._block = None

    def pack(self, t):
        storage = t.untyped_storage()
        key = storage._cdata
        if key not in self.exclude and key not in self.seen:
            self.seen.add(key)
            self.keep.append(t)
            n = storage.nbytes()
            if self.float_bytes is not None and t.is_floating_point():
                n = n // t.element_size() * self.float_bytes
            self.by_component[self.component] = self.by_component.get(self.component, 0) + n
            if self._block is not None:
                self._block[1][0] += n
        return t

    def close(self):
        for h in self._handles:
            h.remove()
        self.keep.clear()


def checkpoint_blocks(model) -> Dict[str, List[torch.nn.Module]]:
    """The blocks each switch checkpoints: LLM decoder layers, SigLIP layers, SAM blocks."""
    out = {}
    llm = getattr(model, 'llm', None)
    if llm is not None:
        base = llm.model.get_base_model() if hasattr(llm.model, 'get_base_model') else llm.model
        out['llm'] = list(base.model.layers)
    if getattr(model, 'vision_encoder', None) is not None:
        out['vision_encoder'] = list(model.vision_encoder.layers)
    if hasattr(getattr(model, 'backbone', None), 'with_cp'):
        out['backbone'] = list(model.backbone.encoder.layers)
    return out


def checkpoint_state(model) -> Dict[str, bool]:
    state = {}
    if getattr(model, 'llm', None) is not None:
        state['llm'] = bool(getattr(model.llm.model, 'is_gradient_checkpointing', False))
    if getattr(model, 'vision_encoder', None) is not None:
        state['vision_encoder'] = bool(model.vision_encoder.with_cp)
    if hasattr(getattr(model, 'backbone', None), 'with_cp'):
        state['backbone'] = bool(model.backbone.with_cp)
    return state


def _cp_module(model, name):
    return model.llm.model if name == 'llm' else getattr(model, name)


def effective_checkpointing(model, state: Dict[str, bool]) -> Dict[str, bool]:
    """Which switches take effect: HF and SAM checkpoint only modules in training mode, so a frozen (eval-mode)
    module runs without checkpointing whatever its switch."""
    return {k: bool(on and _cp_module(model, k).training) for k, on in state.items()}


def set_checkpointing(model, state: Dict[str, bool]) -> None:
    for name, on in state.items():
        if name == 'llm':
            hf = model.llm.model
            if on:
                hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=False))
            elif getattr(hf, 'is_gradient_checkpointing', False):
                hf.gradient_checkpointing_disable()
        else:
            getattr(model, name).with_cp = on


def _any_trainable(module) -> bool:
    return module is not None and any(p.requires_grad for p in module.parameters())


def input_sizes(model) -> Dict[str, Optional[int]]:
    sam = int(model.backbone.config.image_size)
    pre = model.data_preprocessor
    enc = getattr(pre, 'encoder_size', None)
    return dict(sam=sam, encoder=None if enc is None else int(enc))


def visual_token_count(model) -> Dict[str, int]:
    """Visual tokens of one image, read off the model's own forward on the meta device."""
    from mmdet.structures import DetDataSample
    if getattr(model, 'llm', None) is None:
        return dict(total=0)
    sizes = input_sizes(model)
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        inputs = torch.empty(1, 3, sizes['sam'], sizes['sam'], device='meta', dtype=dtype)
        enc = None if sizes['encoder'] is None else torch.empty(1, 3, sizes['encoder'], sizes['encoder'],
                                                                device='meta', dtype=dtype)
        visual = model._encode_images(inputs, enc, [DetDataSample(metainfo=dict(has_image=True))])
        seg = 0 if visual['seg_tokens'] is None else int(visual['seg_tokens'].shape[1])
    total = int(visual['image_tokens'][0].shape[0])
    return dict(total=total, image_encoder=total - seg, sam=seg)


def _map_shapes(model) -> List[tuple]:
    """Shapes of the backbone maps the decoder reads, from the backbone's forward on the meta device."""
    sizes = input_sizes(model)
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        maps = model.backbone(torch.empty(1, 3, sizes['sam'], sizes['sam'], device='meta', dtype=dtype))
    keep = getattr(model, 'neck_in_indices', None)
    keep = range(len(maps)) if keep is None or getattr(model, 'llm', None) is None else keep
    return [tuple(maps[i].shape) for i in keep]


def measure_decoder(model) -> Dict[str, object]:
    """Bytes the decoder (connector + pixel decoder + masked-attention decoder) saves for one image.

    mmcv's deformable attention checks its inputs' values, which the meta device cannot, so the decoder is
    materialised on the CPU (random weights) and run on real random inputs of the backbone maps' shapes; only
    shapes matter for the count. It runs in fp32 (mmdet's positional encodings are fp32 and meet the weights'
    dtype in the decoder's linear layers) and its floating-point tensors are counted at the model's dtype
    size (2 bytes for bf16)."""
    import copy

    from mmdet.structures import DetDataSample
    if getattr(model, 'panoptic_head', None) is None:
        return dict(bytes=0)
    parts = torch.nn.ModuleDict({k: copy.deepcopy(getattr(model, k)) for k in ('neck', 'panoptic_head')
                                 if getattr(model, k, None) is not None})
    parts.to_empty(device='cpu').float()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in parts.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
        for b in parts.buffers():
            b.zero_()
    parts.train()
    dtype = next(model.parameters()).dtype
    maps = [torch.randn(s, generator=gen).requires_grad_(True) for s in _map_shapes(model)]
    meter = SavedTensorMeter(parts, {}, float_bytes=torch.finfo(dtype).bits // 8)
    meter.exclude |= {m.untyped_storage()._cdata for m in maps}  # the encoders' outputs, counted there
    head = parts['panoptic_head']
    try:
        with torch.autograd.graph.saved_tensors_hooks(meter.pack, lambda t: t):
            meter.component = 'decoder'
            x = parts['neck'](maps) if 'neck' in parts else maps
            if getattr(head, 'cls_mode', 'linear') == 'conditioned':
                c = head.decoder_embed_dims
                cond = torch.randn(1, 1, c, generator=gen).requires_grad_(True)
                seg = torch.randn(1, c, generator=gen).requires_grad_(True)
                out = head(list(x), [DetDataSample()], cond, None, seg)
            else:
                out = head(list(x), [DetDataSample()])
        n = meter.by_component.get('decoder', 0)
        del out
    finally:
        meter.close()
    return dict(bytes=n)


def measure_activations(model, text_tokens: int, visual_tokens: int, cp: Dict[str, bool],
                        flash: bool) -> Dict[str, object]:
    """One training sample's forward on the meta device (encoders, LLM + LM loss, llm_projector); bytes
    saved for backward per component. The decoder is measured apart (:func:`measure_decoder`)."""
    from mmdet.structures import DetDataSample
    set_checkpointing(model, cp)
    blocks = checkpoint_blocks(model)
    meter = SavedTensorMeter(model, blocks)
    sizes = input_sizes(model)
    dtype = next(model.parameters()).dtype
    device = torch.device('meta')
    xsam = getattr(model, 'llm', None) is not None
    try:
        with torch.autograd.graph.saved_tensors_hooks(meter.pack, lambda t: t), flash_sdpa(flash), meta_autocast():
            inputs = torch.empty(1, 3, sizes['sam'], sizes['sam'], device=device, dtype=dtype)
            meter.component = 'encoders'
            if xsam:
                enc = None if sizes['encoder'] is None else torch.empty(
                    1, 3, sizes['encoder'], sizes['encoder'], device=device, dtype=dtype)
                model._encode_images(inputs, enc, [DetDataSample(metainfo=dict(has_image=True))])
                meter.component = 'llm'
                seq = text_tokens + visual_tokens
                hidden_size = model.llm.get_input_embeddings().weight.shape[1]
                embeds = torch.empty(1, seq, hidden_size, device=device, dtype=dtype,
                                     requires_grad=_any_trainable(model.vision_projector) or
                                     _any_trainable(model.seg_projector) or _any_trainable(model.llm))
                labels = torch.empty(1, seq, device=device, dtype=torch.long)
                out = model.llm(embeds, None, labels=labels, output_hidden_states=model.with_decoder)
                if model.with_decoder:
                    meter.component = 'llm_projector'
                    model.llm_projector(out.hidden_states[-1])  # (1, T, C) -> conditions, <SEG>
            else:  # a segmentor (stage 1)
                model.extract_feat(inputs)
        by_component = dict(meter.by_component)
        block_max = {k: max(v) for k, v in meter.block_bytes.items() if v}
    finally:
        meter.close()
    return dict(by_component=by_component, block_max=block_max, saved=sum(by_component.values()))


def activation_settings(model, text_tokens: int, visual_tokens: int, flash: bool,
                        configured: Dict[str, bool], decoder: Optional[int] = None) -> Dict[str, dict]:
    """Per sample bytes for no checkpointing, the config's and full checkpointing (+ the recompute peak)."""
    decoder = measure_decoder(model)['bytes'] if decoder is None else decoder

    def add_decoder(m):
        if decoder:
            m['by_component'] = dict(m['by_component'], decoder=decoder)
            m['saved'] += decoder
        return m

    none = add_decoder(measure_activations(model, text_tokens, visual_tokens, {k: False for k in configured}, flash))
    results = dict(none=dict(none, recompute=0, bytes=none['saved'], checkpointed=[]))
    for mode, state in (('config', configured), ('full', {k: True for k in configured})):
        state = effective_checkpointing(model, state)
        if not any(state.values()):
            results[mode] = dict(results['none'])
            continue
        m = add_decoder(measure_activations(model, text_tokens, visual_tokens, state, flash))
        recompute = max([none['block_max'].get(k, 0) for k, on in state.items() if on] or [0])
        results[mode] = dict(m, recompute=recompute, bytes=m['saved'] + recompute,
                             checkpointed=[k for k, on in state.items() if on])
    set_checkpointing(model, configured)
    return results


# --------------------------------------------------------------------------------------- text lengths
def _pack_max_length(cfg) -> Optional[int]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get('type') == 'PackXSAMInputs' and node.get('max_length'):
                found.append(int(node['max_length']))
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)

    walk(cfg.get('train_dataloader'))
    return max(found) if found else None


#: data set type -> the task of its samples
DATASET_TASKS = dict(XSAMImageConvDataset='imgconv', XSAMGenericSegDataset='genseg', XSAMReferSegDataset='refseg',
                     XSAMReasonSegDataset='reaseg', XSAMGCGSegDataset='gcgseg', XSAMVGDSegDataset='vgdseg')


def training_tasks(cfg) -> List[str]:
    """The tasks of the config's training sources (empty when a type is unknown: then every task)."""
    loader = cfg.get('train_dataloader')
    if not loader:
        return []
    ds = loader.dataset
    sources = ds.datasets if ds.get('type') == 'BalancedConcatDataset' else [ds]
    tasks = [DATASET_TASKS.get(src.get('type')) for src in sources]
    return [] if None in tasks else sorted(set(tasks), key=TASKS.index)


def measure_text_lengths(cfg, samples_per_task: int, notes: List[str]) -> Dict[str, dict]:
    """{task: dict(mean, max, images, regions, n, source)} from the config's training data, when present."""
    import copy

    from mmdet.registry import DATASETS
    loader = cfg.get('train_dataloader')
    if not loader or samples_per_task <= 0:
        return {}
    ds_cfg = loader.dataset
    sources = ds_cfg.datasets if ds_cfg.get('type') == 'BalancedConcatDataset' else [ds_cfg]
    stats: Dict[str, dict] = {}
    from bench_utils import _tokenizer_dicts
    missing = sorted({t['name_or_path'] for t in _tokenizer_dicts(loader) if not osp.isdir(t['name_or_path'])})
    if missing:
        notes.append(f'text lengths: the pipeline tokenizer {missing} is not a local folder; the packing budget '
                     'is used (--seq-len to give lengths)')
        return {}
    absent = sorted({src.get('data_root', '') for src in sources if not osp.isdir(src.get('data_root', '') or '.')})
    if absent:
        notes.append(f'text lengths: data not found ({absent}); the packing budget is used (--seq-len to give '
                     'lengths)')
        return {}
    for src in sources:
        try:
            dataset = DATASETS.build(copy.deepcopy(src))
            n = len(dataset)
        except (FileNotFoundError, OSError) as err:
            notes.append(f'text lengths: {src.get("type")} data not found ({str(err).splitlines()[0][:120]}); '
                         'the packing budget is used')
            continue
        idx = sorted({int(i * n / samples_per_task) for i in range(min(samples_per_task, n))})
        for i in idx:
            item = dataset[i]
            sample = item['data_samples']
            ids = sample.input_ids
            task = sample.metainfo.get('task', 'unknown')
            s = stats.setdefault(task, dict(lengths=[], images=[], regions=[]))
            s['lengths'].append(int((ids >= 0).sum()))
            s['images'].append(int((ids == IMAGE_TOKEN_INDEX).sum()))
            s['regions'].append(int((ids == REGION_TOKEN_INDEX).sum()))
    out = {}
    for task, s in stats.items():
        out[task] = dict(mean=sum(s['lengths']) / len(s['lengths']), max=max(s['lengths']),
                         images=max(s['images']), regions=max(s['regions']), n=len(s['lengths']), source='data')
    return out


# --------------------------------------------------------------------------------------------- main
def plan(args) -> dict:
    cfg = load_config(args.config, args.cfg_options, data_root=args.data_root, tokenizer=args.tokenizer)
    notes: List[str] = []
    micro = args.micro_batch or int(cfg.get('train_dataloader', {}).get('batch_size', 1))
    model = build_on_meta(cfg, notes)

    modules = top_level_params(model)
    total, trainable = count_params(model)
    largest = largest_layer_params(model)
    states = model_states(trainable, total - trainable, largest, args.gpus)
    strategy = cfg.get('strategy') or {}
    zero_stage = (strategy.get('zero_optimization') or {}).get('stage')

    model.to(torch.bfloat16)
    flash = args.attention == 'flash'
    configured = checkpoint_state(model)
    inactive = [k for k, on in configured.items() if on and not effective_checkpointing(model, configured)[k]]
    if inactive:
        notes.append(f'checkpointing switched on but inactive for {inactive}: frozen modules run in eval mode, '
                     'where HF/SAM do not checkpoint (their activations are kept when gradients flow through '
                     'them to trainable inputs)')
    xsam = getattr(model, 'llm', None) is not None
    result = dict(config=args.config, settings=dict(gpus=args.gpus, micro_batch=micro, dtype='bfloat16',
                                                    optimizer='AdamW', attention=args.attention,
                                                    config_zero_stage=zero_stage),
                  notes=notes,
                  params=dict(modules={k: dict(total=v[0], trainable=v[1]) for k, v in modules.items()},
                              total=total, trainable=trainable, frozen=total - trainable,
                              largest_layer=largest),
                  model_states=states, checkpointing=configured)

    if args.skip_activations:
        return result
    if not xsam:  # stage-1 segmentor: one image, no sequence
        act = activation_settings(model, 0, 0, flash, configured)
        result['activations'] = dict(image=act)
        result['per_gpu'] = {'image': {k: states[k]['bytes'] + micro * act['config']['bytes']
                                       for k in ('ddp', 'zero2', 'zero3')}}
        return result

    visual = visual_token_count(model)
    budget = _pack_max_length(cfg)
    measured = {} if '*' in args.seq_overrides else measure_text_lengths(cfg, args.samples_per_task, notes)
    tasks = {}
    trained = training_tasks(cfg)
    wanted = [t for t in TASKS if t in trained or t in args.seq_overrides or (not trained and t in TASKS)]
    for task in wanted:
        if task in args.seq_overrides or '*' in args.seq_overrides:
            text, source = args.seq_overrides.get(task, args.seq_overrides.get('*')), 'given'
            images, regions, mean = 1, 0, None
        elif task in measured:
            m = measured[task]
            text, source, images, regions, mean = m['max'], f"data (max of {m['n']})", m['images'], m['regions'], \
                m['mean']
        elif measured:
            continue  # the config's data have no such task
        elif budget:
            text, source, images, regions, mean = budget, 'budget (max_length)', 1, 0, None
        else:
            raise CommandLineError('no text length: the config has no PackXSAMInputs max_length and no data; '
                                   'give --seq-len')
        seq = text + images * visual['total'] + regions
        tasks[task] = dict(text_tokens=text, text_mean=mean, text_source=source, images=images, regions=regions,
                           seq_len=seq)
    cache: Dict[int, dict] = {}
    decoder = measure_decoder(model)['bytes']
    for task, t in tasks.items():
        extra = t['seq_len'] - visual['total']  # the LLM sees text + regions + visual tokens
        if t['seq_len'] not in cache:
            cache[t['seq_len']] = activation_settings(model, extra, visual['total'], flash, configured, decoder)
        act = cache[t['seq_len']]
        t['activations'] = {mode: dict(bytes=a['bytes'], by_component=a['by_component'], recompute=a['recompute'],
                                       checkpointed=a['checkpointed']) for mode, a in act.items()}
        t['per_gpu'] = {k: states[k]['bytes'] + micro * act['config']['bytes'] for k in ('ddp', 'zero2', 'zero3')}
    result['visual_tokens'] = visual
    result['text_budget'] = budget
    result['tasks'] = tasks
    return result


def gib(n: float) -> str:
    return human_bytes(n)


def format_tables(r: dict) -> str:
    s = r['settings']
    out = [f"# {r['config']}: {r['params']['total']:,} parameters, {r['params']['trainable']:,} trainable",
           '']
    for note in r['notes']:
        out.append(f'- {note}')
    rows = [[k, f"{v['total']:,}", f"{v['trainable']:,}"] for k, v in r['params']['modules'].items()]
    rows.append(['**total**', f"**{r['params']['total']:,}**", f"**{r['params']['trainable']:,}**"])
    out += ['', markdown_table(['module', 'parameters', 'trainable'], rows), '']
    zs = s['config_zero_stage']
    names = dict(ddp='DDP', zero2='ZeRO-2', zero3='ZeRO-3')
    rows = [[names[k] + (' (config)' if (zs == 2 and k == 'zero2') or (zs == 3 and k == 'zero3') else ''),
             v['formula'], gib(v['bytes'])] for k, v in r['model_states'].items()]
    out += [f"Model states per GPU, {s['gpus']} GPUs, bf16 + AdamW (P_t = {r['params']['trainable']:,}, "
            f"P_f = {r['params']['frozen']:,}, largest layer = {r['params']['largest_layer']:,}):", '',
            markdown_table(['strategy', 'bytes per GPU', 'memory'], rows), '']
    cp = ', '.join(f'{k}={v}' for k, v in r['checkpointing'].items()) or 'n/a'
    if 'tasks' not in r and 'activations' not in r:
        return '\n'.join(out)
    if 'tasks' in r:
        v = r['visual_tokens']
        out += [f"Visual tokens per image: {v['total']} ({v.get('image_encoder', 0)} image encoder + "
                f"{v.get('sam', 0)} SAM); text budget {r['text_budget']}. Activations per sample "
                f"(saved for backward, {s['attention']} attention), checkpointing in the config: {cp}; "
                f"per-GPU totals at micro-batch {s['micro_batch']} with the config's checkpointing:", '']
        rows = []
        for task, t in r['tasks'].items():
            a = t['activations']
            rows.append([task, t['text_tokens'], t['text_source'], t['seq_len'], gib(a['none']['bytes']),
                         gib(a['config']['bytes']), gib(a['full']['bytes']), gib(t['per_gpu']['ddp']),
                         gib(t['per_gpu']['zero2']), gib(t['per_gpu']['zero3'])])
        out.append(markdown_table(['task', 'text tokens', 'from', 'sequence', 'act. no CP', 'act. config CP',
                                   'act. full CP', 'DDP', 'ZeRO-2', 'ZeRO-3'], rows))
        first = next(iter(r['tasks'].values()))
        comp = first['activations']['config']['by_component']
        out += ['', f"Per component ({next(iter(r['tasks']))}, config checkpointing): " +
                ', '.join(f'{k} {gib(b)}' for k, b in comp.items()) +
                f", recompute peak {gib(first['activations']['config']['recompute'])}"]
    else:
        a = r['activations']['image']
        out += [f"Activations per image (no CP / config CP ({cp}) / full CP): {gib(a['none']['bytes'])} / "
                f"{gib(a['config']['bytes'])} / {gib(a['full']['bytes'])}; per GPU at micro-batch "
                f"{s['micro_batch']}: " + ', '.join(f'{names[k]} {gib(b)}'
                                                    for k, b in r['per_gpu']['image'].items())]
    return '\n'.join(out)


def main(argv=None) -> int:
    return run_tool('plan_memory.py', argv, parse_args, plan, format_tables)

if __name__ == '__main__':
    sys.exit(main())
