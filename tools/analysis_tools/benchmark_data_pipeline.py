"""Benchmark the X-SAM data pipeline per task on the CPU, at full image size.

For each task the task data set is built on the synthetic ``val`` split with the full X-SAM pipeline::

    LoadImageFromFile -> LoadPanopticSegments (genseg) | LoadXSAMAnnotations (other tasks)
    -> XSAMResize(longest side = --scale, keep ratio) -> PackXSAMInputs(tokenizer)

The synthetic images are 128 px, so at the default ``--scale 1024`` they are upscaled and every per-sample
mask operation (resize, packing) works at the real X-SAM size. Data sets are built in training mode
(``test_mode=False``, masks and answers present) with ``prompt_mode='fixed'`` (first template, every category
for genseg), so the work is the training-time work and the numbers are reproducible.

Measured per task (see :func:`benchmark_task`):

* ``samples_per_s``: ``--num-samples`` reads of ``dataset[i]`` timed with ``time.perf_counter`` after
  ``--warmup`` untimed reads (single process, no dataloader workers); ``cpu_seconds`` (``time.process_time``
  over the same reads, all threads) helps to tell a slow pipeline from a busy machine;
* ``masks_per_sample``: mean number of target masks (``data_samples.gt_instances.masks``);
* ``target_bytes_per_sample``: mean ``nbytes`` of those packed target masks (uint8 ``BitmapMasks``, at the
  resized image size, as produced; ReasonSeg's ignore mask and visual prompts are not counted);
* ``int64_bytes_per_sample``: the official layout for the same masks, ``num_masks x S x S x 8`` bytes
  (int64, padded to the ``--scale`` square S, i.e. 1024 x 1024 by default); ``ratio`` = int64 / ours;
* ``traced_peak_bytes_per_sample`` (mean) / ``traced_peak_bytes_max``: peak of the Python allocations
  (``tracemalloc``, which sees numpy and OpenCV arrays but not torch tensors) above the level before the
  read, per sample, in a second, untimed pass (tracemalloc slows the reads down);
* ``rss_peak_increase_bytes``: peak RSS during the warm-up and timed reads minus the RSS before them. On
  Linux the kernel's peak mark is reset per task (``/proc/self/clear_refs``, then ``VmHWM``:
  ``rss_source='VmHWM'``); elsewhere it is ``resource.getrusage`` ``ru_maxrss`` (``rss_source='ru_maxrss'``),
  a process-wide peak that only grows, so a task below an earlier task's peak reports 0. RSS counts every
  allocation (torch included) but also allocator caching, so it is coarse next to the traced peak.

Example::

    python tools/dataset_converters/generate_shapes.py data/shapes
    python tools/misc/build_tiny_tokenizer.py data/shapes --out data/shapes/tokenizer
    python tools/analysis_tools/benchmark_data_pipeline.py --data-root data/shapes \\
        --tokenizer data/shapes/tokenizer --num-samples 30 --out work_dirs/bench_data.json
"""
import argparse
import json
import os
import os.path as osp
import resource
import sys
import time
import tracemalloc
from typing import Callable, Dict, List, Optional, Sequence

TASKS = ('genseg', 'refseg', 'reaseg', 'gcgseg', 'imgconv')

# task -> (data set type, files under the data root it needs, kwargs relative to the data root)
TASK_DATASETS = {
    'genseg': ('XSAMGenericSegDataset', ['annotations/panoptic_val.json', 'annotations/panoptic_val'],
               dict(ann_file='annotations/panoptic_val.json',
                    data_prefix=dict(img='images/', seg='annotations/panoptic_val/'))),
    'refseg': ('XSAMReferSegDataset', ['refshapes/refs(unc).p', 'refshapes/instances.json'],
               dict(refer_file='refshapes/refs(unc).p', ann_file='refshapes/instances.json', split='val',
                    data_prefix=dict(img='images/'))),
    'reaseg': ('XSAMReasonSegDataset', ['reason_seg/val'], dict(data_prefix=dict(img='reason_seg/val'))),
    'gcgseg': ('XSAMGCGSegDataset', ['gcg/grandf_gcg_val.json'],
               dict(ann_file='gcg/grandf_gcg_val.json', data_prefix=dict(img_path='images/'))),
    'imgconv': ('XSAMImageConvDataset', ['llava/conversations_val.json'],
                dict(ann_file='llava/conversations_val.json', data_prefix=dict(img_path='images/'))),
}

GENERATE_HINT = 'python tools/dataset_converters/generate_shapes.py {root}'
TOKENIZER_HINT = 'python tools/misc/build_tiny_tokenizer.py {root} --out {tok}'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Samples/s and target-mask memory of the X-SAM data pipeline '
                                     'per task, on the synthetic val split, on the CPU')
    parser.add_argument('--data-root', default='data/shapes', help='synthetic shapes data (default: data/shapes)')
    parser.add_argument('--tokenizer', default='data/shapes/tokenizer',
                        help='tokenizer folder for PackXSAMInputs (default: data/shapes/tokenizer)')
    parser.add_argument('--tasks', nargs='+', default=list(TASKS), choices=TASKS, help='tasks to measure')
    parser.add_argument('--scale', type=int, default=1024, help='longest image side after XSAMResize (default: 1024)')
    parser.add_argument('--num-samples', type=int, default=50, help='timed samples per task (default: 50)')
    parser.add_argument('--warmup', type=int, default=5, help='untimed samples read first (default: 5)')
    parser.add_argument('--out', help='also write the results to this JSON file')
    return parser.parse_args(argv)


def _fail(msg: str):
    raise SystemExit(f'{osp.basename(__file__)}: error: {msg}')


def check_paths(data_root: str, tokenizer: str, tasks: Sequence[str]) -> None:
    """Exit with a message naming the missing path and the command that makes it."""
    if not osp.isdir(data_root):
        _fail(f'data root {data_root!r} does not exist; generate it with: {GENERATE_HINT.format(root=data_root)}')
    for task in tasks:
        for rel in TASK_DATASETS[task][1] + ['images']:
            if not osp.exists(osp.join(data_root, rel)):
                _fail(f'{task}: {osp.join(data_root, rel)!r} does not exist (not a shapes data root?); generate it '
                      f'with: {GENERATE_HINT.format(root=data_root)}')
    if not osp.isfile(osp.join(tokenizer, 'tokenizer_config.json')):
        what = 'does not exist' if not osp.exists(tokenizer) else 'has no tokenizer_config.json'
        _fail(f'tokenizer {tokenizer!r} {what}; build it with: '
              f'{TOKENIZER_HINT.format(root=data_root, tok=tokenizer)}')


def build_pipeline(task: str, tokenizer: str, scale: int) -> List:
    load_ann = dict(type='LoadPanopticSegments') if task == 'genseg' else dict(type='LoadXSAMAnnotations')
    image_part = [dict(type='LoadImageFromFile'), load_ann, dict(type='XSAMResize', scale=(scale, scale),
                                                                  keep_ratio=True)]
    pack = dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tokenizer))
    if task == 'imgconv':
        return [dict(type='IfHasImage', transforms=image_part), pack]
    return image_part + [pack]


def build_task_dataset(task: str, data_root: str, tokenizer: str, scale: int = 1024):
    """The task's data set on the synthetic val split with the full X-SAM pipeline (training mode, fixed
    prompts)."""
    from mmengine.registry import init_default_scope
    import mmxsam  # noqa: F401  (registers the data sets and transforms)
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    type_name, _, kwargs = TASK_DATASETS[task]
    return DATASETS.build(dict(type=type_name, data_root=data_root, prompt_mode='fixed', test_mode=False,
                               pipeline=build_pipeline(task, tokenizer, scale), **kwargs))


def _target_masks(packed: dict):
    gt = packed['data_samples'].get('gt_instances')
    masks = None if gt is None else gt.get('masks')
    if masks is None:
        return 0, 0
    arr = getattr(masks, 'masks', masks)  # BitmapMasks or a tensor
    nbytes = arr.nbytes if hasattr(arr, 'nbytes') else arr.numel() * arr.element_size()
    return len(arr), int(nbytes)


def _read_vm(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> str:
    """Reset the kernel's peak-RSS mark where Linux allows it (``/proc/self/clear_refs``); returns the source
    :func:`peak_rss` will read: ``'VmHWM'`` (per-task peak) or ``'ru_maxrss'`` (process peak, only grows)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        if _read_vm('VmHWM') is not None:
            return 'VmHWM'
    except OSError:
        pass
    return 'ru_maxrss'


def current_rss(source: str) -> int:
    rss = _read_vm('VmRSS') if source == 'VmHWM' else None
    return peak_rss('ru_maxrss') if rss is None else rss


def peak_rss(source: str) -> int:
    if source == 'VmHWM':
        return _read_vm('VmHWM')
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == 'darwin' else int(rss) * 1024  # bytes on macOS, KiB on Linux


def benchmark_task(dataset, num_samples: int, warmup: int = 0, scale: int = 1024,
                   trace_memory: bool = True, timer: Callable[[], float] = time.perf_counter) -> Dict:
    """Read ``dataset[i]`` for ``warmup`` then ``num_samples`` indices (cycling when the data set is shorter)
    and measure speed and target-mask memory (see the module docstring for every key)."""
    if num_samples < 1 or warmup < 0:
        raise ValueError(f'num_samples must be >= 1 and warmup >= 0, got {num_samples} and {warmup}')
    if len(dataset) == 0:
        raise ValueError(f'{type(dataset).__name__} is empty')
    n = len(dataset)
    rss_source = reset_peak_rss()
    rss0 = current_rss(rss_source)
    for i in range(warmup):
        dataset[i % n]
    indices = [(warmup + i) % n for i in range(num_samples)]
    num_masks, target_bytes = [], []
    t0, c0 = timer(), time.process_time()
    for i in indices:
        k, b = _target_masks(dataset[i])
        num_masks.append(k)
        target_bytes.append(b)
    seconds, cpu_seconds = timer() - t0, time.process_time() - c0
    rss_increase = max(0, peak_rss(rss_source) - rss0)

    traced = []
    if trace_memory:
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        try:
            for i in indices:
                before = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                packed = dataset[i]
                traced.append(tracemalloc.get_traced_memory()[1] - before)
                del packed
        finally:
            if started:
                tracemalloc.stop()

    mean_masks = sum(num_masks) / num_samples
    ours = sum(target_bytes) / num_samples
    int64 = sum(num_masks) * scale * scale * 8 / num_samples
    return dict(
        num_samples=num_samples,
        warmup=warmup,
        dataset_len=n,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        samples_per_s=num_samples / seconds if seconds > 0 else float('inf'),
        masks_per_sample=mean_masks,
        target_bytes_per_sample=ours,
        int64_bytes_per_sample=int64,
        ratio=(int64 / ours) if ours > 0 else None,
        traced_peak_bytes_per_sample=(sum(traced) / len(traced)) if traced else None,
        traced_peak_bytes_max=max(traced) if traced else None,
        rss_peak_increase_bytes=rss_increase,
        rss_source=rss_source,
    )


def _mib(x) -> str:
    return 'n/a' if x is None else f'{x / 2**20:.2f} MiB'


def format_table(results: Dict[str, Dict]) -> str:
    rows = ['| task | samples/s | masks/sample | target bytes/sample (ours) | int64 layout bytes/sample | ratio '
            '| traced peak/sample (mean / max) | peak RSS increase |',
            '|---|---|---|---|---|---|---|---|']
    for task, r in results.items():
        ratio = 'n/a' if r['ratio'] is None else f"{r['ratio']:.1f}x"
        rows.append(f"| {task} | {r['samples_per_s']:.2f} | {r['masks_per_sample']:.2f} "
                    f"| {r['target_bytes_per_sample']:.0f} ({_mib(r['target_bytes_per_sample'])}) "
                    f"| {r['int64_bytes_per_sample']:.0f} ({_mib(r['int64_bytes_per_sample'])}) | {ratio} "
                    f"| {_mib(r['traced_peak_bytes_per_sample'])} / {_mib(r['traced_peak_bytes_max'])} "
                    f"| {_mib(r['rss_peak_increase_bytes'])} |")
    return '\n'.join(rows)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.num_samples < 1 or args.warmup < 0 or args.scale < 1:
        _fail('--num-samples and --scale must be >= 1 and --warmup >= 0')
    check_paths(args.data_root, args.tokenizer, args.tasks)  # before the heavy imports: errors stay fast

    import torch
    results = {}
    for task in args.tasks:
        dataset = build_task_dataset(task, args.data_root, args.tokenizer, args.scale)
        results[task] = benchmark_task(dataset, args.num_samples, args.warmup, args.scale)
        print(f"{task}: {results[task]['samples_per_s']:.2f} samples/s over {args.num_samples} samples "
              f"({len(dataset)} in the data set)", flush=True)
    env = dict(scale=args.scale, num_samples=args.num_samples, warmup=args.warmup, split='val',
               cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
               memory_note='traced_*: tracemalloc peak of Python/numpy/OpenCV allocations per sample (torch '
               'tensors not seen), untimed pass; rss_peak_increase_bytes: peak RSS of the warm-up and timed reads '
               'above the RSS before them (rss_source VmHWM: reset per task; ru_maxrss: process peak, only grows); '
               'int64 layout: num_masks x scale x scale x 8 bytes')
    print()
    print(f'Data pipeline, val split, longest side {args.scale}, {args.num_samples} samples after {args.warmup} '
          f'warm-up, 1 process, {os.cpu_count()} CPUs')
    print()
    print(format_table(results))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(settings=env, results=results), f, indent=2)
        print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
