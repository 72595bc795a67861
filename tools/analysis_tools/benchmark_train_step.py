"""Time X-SAM training steps on real batches of a config's train dataloader, split by component.

The model is built from the config with random weights (its ``init_cfg`` checkpoints are not read), the
batches come from the config's own ``train_dataloader`` (the synthetic shapes data for the tiny configs; data
loading is done before timing and is not part of the step: see ``benchmark_data_pipeline.py``), and a step is
exactly ``model.train_step(batch, optim_wrapper)`` as mmengine's loop runs it: data preprocessor, forward with
the losses, backward, optimizer step. The optimizer is the config's (type, lr, ``paramwise_cfg``) in a plain
``OptimWrapper`` (DeepSpeed and AMP wrappers need their runtime; ``--amp`` runs the forward under
``torch.autocast(device, bfloat16)`` instead). Reported:

* **step time** (mean, min, max over ``--iters`` steps after ``--warmup`` untimed ones; CUDA synchronised),
  samples/s, LLM tokens/s (non-padded tokens the LLM sees, visual tokens included) and padded tokens/s;
* **peak memory**: CUDA ``torch.cuda.max_memory_allocated``; CPU the process's peak RSS over the timed steps
  (``VmHWM`` after resetting it through ``/proc/self/clear_refs``; elsewhere ``ru_maxrss``, which never
  decreases);
* **component split** (a second timed pass; the hooks are installed by this tool only and removed after):
  data_preprocessor, encoders (SAM backbone + image encoder), projectors/connector (vision/seg projectors,
  region sampler, connector, llm_projector), LLM (its forward incl. the LM loss), seg head forward,
  Hungarian matching (``_get_targets_single``: point sampling + assigner + sampler), losses (the rest of
  ``loss_by_feat``), backward, optimizer (step + zero_grad). Module forwards re-run during the backward pass
  by activation checkpointing count as backward. **framework overhead** = step time / sum of the components
  (the rest is glue: multimodal merge, decoder items, loss parsing, Python);
* **MFU** = FLOPs per step / step time / peak FLOP/s. FLOPs per step (forward + backward)::

      LLM:   T_tok x (2 N + 2 N [any gradient flows through the LLM] + 2 N_t) + 12 L h sum_i(s_i^2) x 3/3
             N = LLM parameters without the input embedding, N_t its trainable part, T_tok = tokens of the
             step, L layers, h hidden size, s_i the padded sequence length of sample i (attention:
             2 matmuls x 2 s^2 h per layer forward, x3 for forward + backward)
      rest:  3 x F_m for every other top-level module m with trainable parameters (forward + input and
             weight gradients), 1 x F_m for a frozen one; F_m its forward FLOPs on the batch measured by
             torch.utils.flop_counter.FlopCounterMode (matmuls, convolutions, attention; grid_sample and
             elementwise ops are not counted)

  ``measured_per_step`` is FlopCounterMode's count of one whole forward + backward (LLM included), reported
  with its own MFU as a cross-check. The peak is ``--peak-tflops``
  or, by default, a probe: the best dense ``--probe-size`` square matmul rate of this device in the step's
  dtype (fp32, or bf16 with ``--amp``), so the CPU MFU is relative to what its matmul kernel reaches;
* **largest tensors in matching and losses**: a ``TorchDispatchMode`` installed around the head's
  ``_get_targets_single`` (matching) and ``loss_by_feat`` (losses) in one extra forward records every tensor
  an op creates there (views excluded); the largest, compared with Q x h x w (queries x mask-feature map) and
  Q x H x W (queries x padded input) and G x H x W (the batch's G target masks): the head samples points, so
  nothing should reach Q x H x W; the target masks themselves are G x H x W.

Examples::

    python tools/analysis_tools/benchmark_train_step.py configs/xsam/tiny_mixed.py --iters 10 --warmup 2
    python tools/analysis_tools/benchmark_train_step.py configs/xsam/benchmarks/mid_mixed.py --iters 6
    python tools/analysis_tools/benchmark_train_step.py configs/xsam/mixed.py --device cuda --amp --batch-size 1
"""
import argparse
import copy
import os.path as osp
import resource
import statistics
import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_utils import (CommandLineError, add_cfg_options, count_params, human_bytes, load_config,  # noqa: E402
                         markdown_table, run_tool)

# component -> group in the summary table
GROUPS = {
    'data_preprocessor': 'data preprocessor', 'backbone': 'encoders', 'vision_encoder': 'encoders',
    'vision_projector': 'projectors/connector', 'seg_projector': 'projectors/connector',
    'region_sampler': 'projectors/connector', 'neck': 'projectors/connector',
    'llm_projector': 'projectors/connector', 'llm': 'LLM', 'panoptic_head': 'seg head forward',
    'matching': 'Hungarian matching', 'losses': 'losses', 'backward': 'backward', 'optimizer': 'optimizer'}
MODULE_COMPONENTS = ('data_preprocessor', 'backbone', 'vision_encoder', 'vision_projector', 'seg_projector',
                     'region_sampler', 'neck', 'llm_projector', 'llm', 'panoptic_head')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Time X-SAM training steps (forward + backward + optimizer) on real '
                                'batches of a config, per component, with peak memory and MFU')
    p.add_argument('config')
    p.add_argument('--iters', type=int, default=10, help='timed steps (default 10)')
    p.add_argument('--warmup', type=int, default=2, help='untimed steps first (default 2)')
    p.add_argument('--batch-size', type=int, default=None, help='samples per step (default: the config)')
    p.add_argument('--device', default='cpu', help='cpu or cuda[:N] (default cpu)')
    p.add_argument('--amp', action='store_true', help='forward under torch.autocast(device, bfloat16)')
    p.add_argument('--peak-tflops', type=float, default=None,
                   help='peak TFLOP/s for the MFU (default: a matmul probe on this device)')
    p.add_argument('--probe-size', type=int, default=1024, help='matmul probe side (default 1024)')
    p.add_argument('--no-breakdown', action='store_true', help='skip the component pass')
    p.add_argument('--no-flops', action='store_true', help='skip the FLOP count (MFU not reported)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--tokenizer', help='tokenizer folder replacing every tokenizer of the config')
    p.add_argument('--data-root', help="replace the config's data_root (e.g. data/shapes/) by this folder")
    p.add_argument('--json', action='store_true', help='print the results as JSON instead of tables')
    p.add_argument('--out', help='also write the JSON results to this file')
    add_cfg_options(p)
    args = p.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        raise CommandLineError(f'--iters must be >= 1 and --warmup >= 0, got {args.iters}, {args.warmup}')
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandLineError(f'--batch-size must be >= 1, got {args.batch_size}')
    args.device = check_device(args.device)
    return args


def check_device(name: str) -> str:
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise CommandLineError(f'--device: unknown device {name!r} (cpu or cuda[:N]): {err}') from None
    if device.type not in ('cpu', 'cuda'):
        raise CommandLineError(f'--device: unknown device {name!r}: use cpu or cuda[:N]')
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise CommandLineError(f'--device {name}: CUDA is not available on this machine')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CommandLineError(f'--device {name}: only {torch.cuda.device_count()} CUDA device(s)')
    return str(device)


# ------------------------------------------------------------------------------------------------ timing
class Clock:
    """perf_counter with CUDA synchronisation."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith('cuda')

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


class ComponentTimer:
    """Times module forwards (hooks) and head/optimizer methods (instance wrappers) during train steps.

    Installed by :func:`install` and fully removed by :meth:`remove`; forwards re-run inside the backward
    pass (activation checkpointing) are left to the backward's time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.totals: Dict[str, float] = {}
        self.in_backward = False
        self._starts: Dict[str, List[float]] = {}
        self._undo: List[Callable[[], None]] = []
        self.llm_tokens = 0
        self.llm_padded = 0

    def add(self, name: str, seconds: float) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + seconds

    def _pre(self, name):
        def hook(module, args, kwargs=None):
            if not self.in_backward:
                self._starts.setdefault(name, []).append(self.clock())
        return hook

    def _post(self, name):
        def hook(module, args, out):
            if not self.in_backward and self._starts.get(name):
                self.add(name, self.clock() - self._starts[name].pop())
        return hook

    def hook_module(self, name: str, module: torch.nn.Module) -> None:
        handles = [module.register_forward_pre_hook(self._pre(name)),
                   module.register_forward_hook(self._post(name))]
        self._undo += [h.remove for h in handles]

    def wrap_method(self, name: str, obj, attr: str, backward: bool = False) -> None:
        original = getattr(obj, attr)
        had_own = attr in vars(obj)

        def wrapped(*args, **kwargs):
            if backward:
                self.in_backward = True
            t0 = self.clock()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(name, self.clock() - t0)
                if backward:
                    self.in_backward = False

        setattr(obj, attr, wrapped)
        self._undo.append(lambda: setattr(obj, attr, original) if had_own else delattr(obj, attr))

    def remove(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def install_timer(timer: ComponentTimer, model, optim_wrapper) -> None:
    for name in MODULE_COMPONENTS:
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            timer.hook_module(name, module)
    head = getattr(model, 'panoptic_head', None)
    if head is not None:
        timer.wrap_method('matching', head, '_get_targets_single')
        timer.wrap_method('loss_by_feat', head, 'loss_by_feat')
    timer.wrap_method('backward', optim_wrapper, 'backward', backward=True)
    timer.wrap_method('optimizer', optim_wrapper, 'step')
    timer.wrap_method('optimizer', optim_wrapper, 'zero_grad')


def component_split(totals: Dict[str, float], steps: int) -> Dict[str, float]:
    """Seconds per step per component; ``losses`` = loss_by_feat minus the matching inside it."""
    t = {k: v / steps for k, v in totals.items()}
    if 'loss_by_feat' in t:
        t['losses'] = t.pop('loss_by_feat') - t.get('matching', 0.0)
    return {k: t[k] for k in GROUPS if k in t}


# ------------------------------------------------------------------------------------------------ memory
def reset_peak(device: str) -> str:
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats(device)
        return 'cuda.max_memory_allocated'
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return 'VmHWM'
    except OSError:
        return 'ru_maxrss'


def read_peak(device: str, source: str) -> int:
    if source == 'cuda.max_memory_allocated':
        return int(torch.cuda.max_memory_allocated(device))
    if source == 'VmHWM':
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# ------------------------------------------------------------------------------------------------ FLOPs
def probe_peak_flops(device: str, dtype: torch.dtype, size: int, repeats: int = 5) -> float:
    """Best achieved FLOP/s of a dense ``size`` x ``size`` matmul on ``device`` in ``dtype``."""
    clock = Clock(device)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    for _ in range(2):
        a @ b
    best = float('inf')
    for _ in range(repeats):
        t0 = clock()
        a @ b
        best = min(best, clock() - t0)
    return 2 * size ** 3 / best


def llm_flops(model, tokens: int, seq_lens: List[int]) -> float:
    """Analytic training FLOPs of the LLM for one step (see the module docstring)."""
    llm = model.llm
    emb = llm.get_input_embeddings().weight
    n_all, n_train = count_params(llm)
    n = n_all - emb.numel()
    n_t = n_train - (emb.numel() if emb.requires_grad else 0)
    cfg = llm.model.config
    layers, hidden = cfg.num_hidden_layers, cfg.hidden_size
    grads_flow = True  # the visual tokens come from trainable projectors in every X-SAM stage
    dense = tokens * (2 * n + (2 * n if grads_flow else 0) + 2 * n_t)
    attention = 12 * layers * hidden * sum(s * s for s in seq_lens)
    return float(dense + attention)


def count_step_flops(model, batch, amp_ctx) -> Dict[str, float]:
    """FlopCounterMode over the batch: ``forward`` per top-level module (one forward pass; the counter's module
    attribution is reliable there) and ``total`` of one forward + backward (no optimizer step).

    The counter's attribution of backward ops to modules is not (with module hooks it charges one op to every
    module on the stack), so the backward is only taken as a whole."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        data = model.data_preprocessor(batch, True)
        with amp_ctx():
            model(**data, mode='loss')
    forward = {}
    for name, ops in counter.get_flop_counts().items():  # dotted module paths from the root ('XSAM.llm')
        parts = name.split('.')
        if len(parts) == 2:
            forward[parts[1]] = float(sum(ops.values()))
    counter = FlopCounterMode(display=False)
    with counter:
        data = model.data_preprocessor(batch, True)
        with amp_ctx():
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
    model.zero_grad(set_to_none=True)
    total = float(sum(counter.get_flop_counts().get('Global', {}).values()))
    return dict(forward=forward, total=total)


def estimate_step_flops(model, forward: Dict[str, float], llm_tokens: Optional[dict]) -> float:
    """Analytic LLM + 3 x measured forward of every other module with trainable parameters (backward = input
    and weight gradients, 2 x forward), 1 x for modules without (frozen: forward only)."""
    flops = 0.0
    for name, f in forward.items():
        if name == 'llm' and llm_tokens is not None:
            continue
        flops += f * (3 if count_params(getattr(model, name, None))[1] else 1)
    if llm_tokens is not None:
        flops += llm_flops(model, llm_tokens['tokens'], llm_tokens['seq_lens'])
    return flops


# ----------------------------------------------------------------------------------- tensors in the loss
class LargestTensorRecorder:
    """Records the largest non-view tensor created by any op while active, per phase."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        recorder = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                recorder.record(func, args, kwargs, out)
                return out

        self.mode_cls = Mode
        self.phase: Optional[str] = None
        self.largest: Dict[str, dict] = {}

    def record(self, func, args, kwargs, out) -> None:
        if self.phase is None:
            return
        inputs = set()
        for a in list(args) + list((kwargs or {}).values()):
            for t in (a if isinstance(a, (list, tuple)) else [a]):
                if isinstance(t, torch.Tensor):
                    inputs.add(t.untyped_storage().data_ptr())
        for t in (out if isinstance(out, (list, tuple)) else [out]):
            if not isinstance(t, torch.Tensor) or t.untyped_storage().data_ptr() in inputs:
                continue  # a view / in-place result: nothing new allocated
            best = self.largest.get(self.phase)
            if best is None or t.numel() > best['numel']:
                self.largest[self.phase] = dict(numel=t.numel(), shape=list(t.shape), dtype=str(t.dtype),
                                                op=str(func.overloadpacket.__name__))

    @contextmanager
    def active(self, phase: str):
        outer, self.phase = self.phase, phase
        with self.mode_cls():
            try:
                yield
            finally:
                self.phase = outer


def largest_loss_tensors(model, batch, amp_ctx) -> Optional[dict]:
    head = getattr(model, 'panoptic_head', None)
    if head is None:
        return None
    rec = LargestTensorRecorder()
    seen = dict(queries=head.num_queries, mask_hw=None, input_hw=None)
    undo = []

    def wrap(attr, phase):
        original = getattr(head, attr)

        def wrapped(*args, **kwargs):
            if attr == 'loss_by_feat':  # all_mask_preds: (layers) x (B, Q, h, w); batch_gt_instances
                seen['mask_hw'] = list(args[1][0].shape[-2:])
                seen['input_hw'] = list(args[3][0]['batch_input_shape'])
                seen['num_gts'] = sum(len(g) for g in args[2])
            with rec.active(phase):
                return original(*args, **kwargs)
        setattr(head, attr, wrapped)
        undo.append(lambda: delattr(head, attr))

    wrap('loss_by_feat', 'losses')
    wrap('_get_targets_single', 'matching')
    try:
        data = model.data_preprocessor(batch, True)
        with amp_ctx():
            model(**data, mode='loss')
    finally:
        for u in undo:
            u()
    if seen['mask_hw'] is None:
        return dict(note='no decoder item in this batch')
    q = seen['queries']
    qhw = q * seen['mask_hw'][0] * seen['mask_hw'][1]
    qHW = q * seen['input_hw'][0] * seen['input_hw'][1]
    gHW = max(1, seen['num_gts']) * seen['input_hw'][0] * seen['input_hw'][1]
    out = dict(num_queries=q, num_gts=seen['num_gts'], mask_hw=seen['mask_hw'], input_hw=seen['input_hw'],
               q_h_w=qhw, q_H_W=qHW, g_H_W=gHW)
    for phase, info in rec.largest.items():
        out[phase] = dict(info, vs_q_H_W=info['numel'] / qHW, vs_q_h_w=info['numel'] / qhw,
                          vs_g_H_W=info['numel'] / gHW)
    return out


# ------------------------------------------------------------------------------------------------ main
def build(args):
    from mmdet.registry import MODELS
    from mmengine.optim import OptimWrapper, build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmxsam  # noqa: F401
    cfg = load_config(args.config, args.cfg_options, data_root=args.data_root, tokenizer=args.tokenizer)
    for tok in _missing_tokenizers(cfg):
        raise CommandLineError(f'tokenizer {tok!r} not found (python tools/misc/build_tiny_tokenizer.py '
                               'data/shapes --out data/shapes/tokenizer, or --tokenizer FOLDER)')
    notes = []
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(args.seed)
    cfg.model.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(args.device).train()
    notes.append('random weights (the config\'s init_cfg checkpoints are not read)')

    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    if optim_cfg.get('type', 'OptimWrapper') != 'OptimWrapper':
        notes.append(f"optimizer wrapper {optim_cfg['type']} replaced by OptimWrapper (same optimizer and "
                     'paramwise_cfg)' + ('; bf16 autocast from --amp' if args.amp else ''))
        optim_cfg = dict(type='OptimWrapper', optimizer=optim_cfg.optimizer,
                         **({'paramwise_cfg': optim_cfg.paramwise_cfg} if 'paramwise_cfg' in optim_cfg else {}),
                         **({'clip_grad': optim_cfg.clip_grad} if 'clip_grad' in optim_cfg else {}))
        if 'clip_grad' not in optim_cfg and (cfg.get('strategy') or {}).get('gradient_clipping'):
            optim_cfg['clip_grad'] = dict(max_norm=cfg.strategy.gradient_clipping)
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    assert isinstance(optim_wrapper, OptimWrapper)

    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    if args.batch_size:
        loader_cfg.batch_size = args.batch_size
        sampler = loader_cfg.get('sampler') or {}
        if 'batch_size' in sampler:
            sampler['batch_size'] = args.batch_size
    try:
        loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    except (FileNotFoundError, OSError) as err:
        raise CommandLineError(f'training data not found: {str(err).splitlines()[0]} (python '
                               'tools/dataset_converters/generate_shapes.py data/shapes, or --data-root)') from None
    return cfg, model, optim_wrapper, loader, notes


def _missing_tokenizers(cfg):
    from bench_utils import _tokenizer_dicts
    return sorted({t['name_or_path'] for t in _tokenizer_dicts(cfg._cfg_dict)
                   if isinstance(t.get('name_or_path'), str) and t['name_or_path'].startswith(('data/', './', '/'))
                   and not osp.isdir(t['name_or_path'])})


def batch_info(batch) -> dict:
    samples = batch['data_samples']
    return dict(size=len(samples), tasks=sorted({s.metainfo.get('task', '?') for s in samples}))


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, model, optim_wrapper, loader, notes = build(args)
    clock = Clock(args.device)
    amp_dtype = torch.bfloat16 if args.amp else torch.float32
    device_type = torch.device(args.device).type

    def amp_ctx():
        return torch.autocast(device_type, dtype=torch.bfloat16) if args.amp else torch.autocast(
            device_type, enabled=False)

    n_batches = args.warmup + args.iters
    batches, it = [], iter(loader)
    for _ in range(n_batches):
        try:
            batches.append(next(it))
        except StopIteration:
            it = iter(loader)
            batches.append(next(it))

    # LLM tokens of each batch (non-padded and padded), read by a hook in an untimed pass below
    token_counts: List[dict] = []

    def llm_hook(module, args_, kwargs):
        embeds = args_[0] if args_ else kwargs['inputs_embeds']
        mask = args_[1] if len(args_) > 1 else kwargs.get('attention_mask')
        b, t = embeds.shape[:2]
        real = int(mask.sum()) if mask is not None else b * t
        seqs = mask.sum(1).tolist() if mask is not None else [t] * b
        token_counts.append(dict(tokens=real, padded=b * t, seq_lens=[t] * b, real_lens=[int(s) for s in seqs]))

    def step(batch):
        with amp_ctx():
            return model.train_step(batch, optim_wrapper)

    for b in batches[:args.warmup]:
        step(b)
    timed = batches[args.warmup:]

    # pass 1: plain steps (the headline numbers)
    peak_source = reset_peak(args.device)
    times = []
    for b in timed:
        t0 = clock()
        step(b)
        times.append(clock() - t0)
    peak = read_peak(args.device, peak_source)

    result = dict(config=args.config, device=args.device, amp=args.amp, threads=torch.get_num_threads(),
                  iters=args.iters, warmup=args.warmup, batch_size=batch_info(timed[0])['size'], notes=notes,
                  batches=[batch_info(b) for b in timed])
    total, trainable = count_params(model)
    result['params'] = dict(total=total, trainable=trainable)
    mean = statistics.mean(times)
    result['step_time'] = dict(mean=mean, min=min(times), max=max(times), all=times)
    samples = sum(bi['size'] for bi in result['batches'])
    result['samples_per_s'] = samples / sum(times)
    result['peak_memory'] = dict(bytes=peak, source=peak_source)

    # token counts (untimed forward hook pass over the same batches, no optimizer step)
    handle = model.llm.register_forward_pre_hook(llm_hook, with_kwargs=True) if hasattr(model, 'llm') else None
    if handle is not None:
        with torch.no_grad():
            for b in timed:
                data = model.data_preprocessor(b, True)
                with amp_ctx():
                    model(**data, mode='loss')
        handle.remove()
        tokens = sum(c['tokens'] for c in token_counts)
        padded = sum(c['padded'] for c in token_counts)
        result['tokens_per_step'] = tokens / len(timed)
        result['tokens_per_s'] = tokens / sum(times)
        result['padded_tokens_per_s'] = padded / sum(times)

    # pass 2: the same steps with the component hooks
    if not args.no_breakdown:
        timer = ComponentTimer(clock)
        install_timer(timer, model, optim_wrapper)
        hooked = []
        try:
            for b in timed:
                t0 = clock()
                step(b)
                hooked.append(clock() - t0)
        finally:
            timer.remove()
        split = component_split(timer.totals, len(timed))
        hooked_mean = statistics.mean(hooked)
        groups: Dict[str, float] = {}
        for k, v in split.items():
            groups[GROUPS[k]] = groups.get(GROUPS[k], 0.0) + v
        result['components'] = dict(per_module=split, groups=groups, hooked_step_time=hooked_mean,
                                    sum=sum(split.values()), framework_overhead=hooked_mean / sum(split.values()),
                                    hook_cost=hooked_mean / mean)

    # FLOPs and MFU
    if not args.no_flops:
        measured, analytic = [], []
        for b, counts in zip(timed, token_counts or [None] * len(timed)):
            f = count_step_flops(model, b, amp_ctx)
            measured.append(f['total'])
            analytic.append(estimate_step_flops(model, f['forward'], counts))
        peak_flops = args.peak_tflops * 1e12 if args.peak_tflops else probe_peak_flops(
            args.device, amp_dtype, args.probe_size)
        flops = statistics.mean(analytic)
        result['flops'] = dict(per_step=flops, measured_per_step=statistics.mean(measured),
                               peak_flops=peak_flops,
                               peak_source='--peak-tflops' if args.peak_tflops else
                               f'matmul probe {args.probe_size}^2 {str(amp_dtype).replace("torch.", "")}',
                               achieved=flops / mean, mfu=flops / mean / peak_flops,
                               mfu_measured=statistics.mean(measured) / mean / peak_flops)

    # largest tensors created in matching / losses (one extra forward of a batch with decoder items)
    for b in timed:
        info = largest_loss_tensors(model, b, amp_ctx)
        if info is None or 'note' not in info:
            result['loss_tensors'] = info
            break
    else:
        result['loss_tensors'] = dict(note='no batch with decoder items')
    return result


def format_tables(r: dict) -> str:
    st = r['step_time']
    out = [f"# {r['config']} on {r['device']}{' (bf16 autocast)' if r['amp'] else ''}, {r['threads']} threads: "
           f"{r['params']['total']:,} parameters ({r['params']['trainable']:,} trainable)", '']
    out += [f'- {n}' for n in r['notes']]
    rows = [[r['batch_size'], f"{st['mean'] * 1e3:.1f}", f"{st['min'] * 1e3:.1f}", f"{st['max'] * 1e3:.1f}",
             f"{r['samples_per_s']:.2f}", f"{r.get('tokens_per_s', 0):.0f}",
             human_bytes(r['peak_memory']['bytes']) + f" ({r['peak_memory']['source']})"]]
    header = ['batch', 'step ms (mean)', 'min', 'max', 'samples/s', 'LLM tokens/s', 'peak memory']
    if 'flops' in r:
        f = r['flops']
        header += ['GFLOP/step', 'MFU']
        rows[0] += [f"{f['per_step'] / 1e9:.2f}", f"{100 * f['mfu']:.1f} %"]
    out += ['', markdown_table(header, rows), '']
    if 'flops' in r:
        f = r['flops']
        out.append(f"FLOPs/step {f['per_step']:.3g} (analytic LLM + 3 x measured forward of the rest; all measured "
                   f"{f['measured_per_step']:.3g}, MFU {100 * f['mfu_measured']:.1f} %), peak "
                   f"{f['peak_flops'] / 1e12:.3f} TFLOP/s ({f['peak_source']})")
    if 'components' in r:
        c = r['components']
        rows = [[k, f'{v * 1e3:.2f}', f"{100 * v / c['sum']:.1f} %"] for k, v in c['groups'].items()]
        rows.append(['**sum of components**', f"{c['sum'] * 1e3:.2f}", '100 %'])
        rows.append(['step (hooked pass)', f"{c['hooked_step_time'] * 1e3:.2f}",
                     f"overhead x{c['framework_overhead']:.3f}"])
        out += ['', markdown_table(['component', 'ms/step', 'share'], rows)]
    lt = r.get('loss_tensors')
    if lt and 'note' not in lt:
        out.append('')
        for phase in ('matching', 'losses'):
            if phase in lt:
                i = lt[phase]
                out.append(f"largest tensor created in {phase}: {i['shape']} {i['dtype']} ({i['op']}), "
                           f"{i['numel']:,} elements = {i['vs_q_h_w']:.3f} x Q*h*w, {i['vs_q_H_W']:.4f} x Q*H*W, "
                           f"{i['vs_g_H_W']:.3f} x G*H*W (Q={lt['num_queries']} queries, G={lt['num_gts']} targets "
                           f"in the batch, h*w={lt['mask_hw']}, H*W={lt['input_hw']})")
    return '\n'.join(out)


def main(argv=None) -> int:
    return run_tool('benchmark_train_step.py', argv, parse_args, run, format_tables)

if __name__ == '__main__':
    sys.exit(main())
