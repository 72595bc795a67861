"""Inference latency of an X-SAM model per task, through the public API (``mmxsam.apis.init_xsam`` /
``inference_xsam``), on a synthetic image.

For each task one synthetic image (coloured shapes on a textured background, ``--image-size`` px, seeded) and
the task's inputs (a question, categories, an expression, visual-prompt masks of the drawn shapes) go through
``inference_xsam`` ``--repeats`` times after ``--warmup`` untimed calls; reported per task: mean / min latency
(pipeline + model, CUDA synchronised), the number of answer tokens generated (the answer re-tokenised with the
model's tokenizer) and answer tokens/s = answer tokens / mean latency. Without a checkpoint the model has random
weights (its answers run to ``max_new_tokens`` or stop at random), which the output says.

Examples::

    python tools/analysis_tools/benchmark_inference.py configs/xsam/tiny_mixed.py work_dirs/tiny_mixed/iter_1500.pth
    python tools/analysis_tools/benchmark_inference.py configs/xsam/tiny_mixed.py --tasks refseg genseg --repeats 5
"""
import argparse
import os.path as osp
import statistics
import sys
from typing import Dict, List

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_utils import (CommandLineError, add_cfg_options, load_config, markdown_table,  # noqa: E402
                         run_tool)
from benchmark_train_step import Clock, check_device  # noqa: E402

TASKS = ('imgconv', 'genseg', 'ovseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg', 'intseg')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Latency and answer tokens/s of X-SAM inference per task')
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None, help='model checkpoint (default: random weights)')
    p.add_argument('--tasks', nargs='+', default=list(TASKS), help=f'tasks (default: all of {TASKS})')
    p.add_argument('--repeats', type=int, default=3, help='timed calls per task (default 3)')
    p.add_argument('--warmup', type=int, default=1, help='untimed calls per task first (default 1)')
    p.add_argument('--mode', choices=('generation', 'teacher_forcing'), default='generation')
    p.add_argument('--image-size', type=int, default=128, help='synthetic image side in px (default 128)')
    p.add_argument('--device', default='cpu', help='cpu or cuda[:N] (default cpu)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--tokenizer', help='tokenizer folder replacing every tokenizer of the config')
    p.add_argument('--json', action='store_true', help='print the results as JSON instead of a table')
    p.add_argument('--out', help='also write the JSON results to this file')
    add_cfg_options(p)
    args = p.parse_args(argv)
    bad = [t for t in args.tasks if t not in TASKS]
    if bad:
        raise CommandLineError(f'--tasks: unknown task(s) {bad} (tasks: {TASKS})')
    if args.repeats < 1 or args.warmup < 0 or args.image_size < 16:
        raise CommandLineError('--repeats must be >= 1, --warmup >= 0 and --image-size >= 16')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise CommandLineError(f'checkpoint not found: {args.checkpoint}')
    args.device = check_device(args.device)
    return args


def synthetic_scene(size: int, seed: int):
    """A BGR uint8 image with a textured background and three shapes, and each shape's (H, W) mask."""
    import cv2
    rng = np.random.default_rng(seed)
    img = (rng.integers(90, 140, (size, size, 3))).astype(np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    masks = []
    s = size
    for kind, colour in (('circle', (0, 0, 230)), ('square', (0, 200, 0)), ('triangle', (220, 0, 0))):
        mask = np.zeros((s, s), np.uint8)
        if kind == 'circle':
            cv2.circle(mask, (s // 4, s // 4), s // 8, 1, -1)
        elif kind == 'square':
            cv2.rectangle(mask, (s // 2, s // 8), (s // 2 + s // 4, s // 8 + s // 4), 1, -1)
        else:
            pts = np.array([[s // 4, 7 * s // 8], [s // 2, s // 2], [3 * s // 4, 7 * s // 8]], np.int32)
            cv2.fillPoly(mask, [pts], 1)
        img[mask > 0] = colour
        masks.append(mask)
    return img, masks


def task_inputs(task: str, masks: List[np.ndarray]) -> dict:
    return {
        'imgconv': dict(text='How many shapes are there in the image?'),
        'genseg': dict(categories=['circle', 'square', 'triangle', 'background']),
        'ovseg': dict(categories=['round object', 'box', 'pyramid']),
        'refseg': dict(text='the red circle on the left'),
        'reaseg': dict(text='the shape that has no corners'),
        'gcgseg': dict(),
        'vgdseg': dict(vprompt_masks=masks[:2]),
        'intseg': dict(vprompt_masks=masks[:1]),
    }[task]


def answer_tokens(model, text: str) -> int:
    if not text:
        return 0
    return len(model.llm.tokenizer.encode(text, add_special_tokens=False))


def run(args) -> dict:
    from mmxsam.apis import inference_xsam, init_xsam
    cfg = load_config(args.config, args.cfg_options, tokenizer=args.tokenizer)
    torch.manual_seed(args.seed)
    try:
        model = init_xsam(cfg, args.checkpoint, device=args.device)
    except OSError as err:
        raise CommandLineError(f'cannot build the model: {str(err).splitlines()[0]} (tiny configs need '
                               'data/shapes/tokenizer: python tools/misc/build_tiny_tokenizer.py data/shapes --out '
                               'data/shapes/tokenizer, or --tokenizer FOLDER)') from None
    clock = Clock(args.device)
    image, masks = synthetic_scene(args.image_size, args.seed)
    answer = 'Sure, it is <SEG>.' if args.mode == 'teacher_forcing' else None
    results: Dict[str, dict] = {}
    for task in args.tasks:
        kwargs = task_inputs(task, masks)
        mode = args.mode
        if task == 'imgconv' or task == 'gcgseg':
            mode = 'generation'  # no fixed answer to force
        extra = dict(answer=answer) if mode == 'teacher_forcing' else {}
        for _ in range(args.warmup):
            inference_xsam(model, image, task, mode=mode, **kwargs, **extra)
        times, result = [], None
        for _ in range(args.repeats):
            t0 = clock()
            result = inference_xsam(model, image, task, mode=mode, **kwargs, **extra)
            times.append(clock() - t0)
        text = result.get('pred_text', '') or ''
        n_tokens = answer_tokens(model, text) if mode == 'generation' else 0
        mean = statistics.mean(times)
        masks_out = result.pred_instances.masks if 'pred_instances' in result else None
        results[task] = dict(mode=mode, mean_s=mean, min_s=min(times), all_s=times, answer_tokens=n_tokens,
                             answer_tokens_per_s=n_tokens / mean, answer=text,
                             num_masks=0 if masks_out is None else int(len(masks_out)))
    return dict(config=args.config, checkpoint=args.checkpoint, random_weights=args.checkpoint is None,
                device=args.device, image_size=args.image_size, repeats=args.repeats, warmup=args.warmup,
                max_new_tokens=int(model.test_cfg.get('max_new_tokens', 512)), tasks=results)


def format_table(r: dict) -> str:
    weights = 'RANDOM weights (no checkpoint)' if r['random_weights'] else r['checkpoint']
    out = [f"# {r['config']} on {r['device']}, {weights}, {r['image_size']} px synthetic image, "
           f"{r['repeats']} timed calls per task (max_new_tokens {r['max_new_tokens']})", '']
    rows = [[t, v['mode'], f"{v['mean_s'] * 1e3:.1f}", f"{v['min_s'] * 1e3:.1f}", v['answer_tokens'],
             f"{v['answer_tokens_per_s']:.1f}", v['num_masks']] for t, v in r['tasks'].items()]
    out.append(markdown_table(['task', 'mode', 'latency ms (mean)', 'min', 'answer tokens', 'answer tokens/s',
                               'masks'], rows))
    return '\n'.join(out)


def main(argv=None) -> int:
    return run_tool('benchmark_inference.py', argv, parse_args, run, format_table)

if __name__ == '__main__':
    sys.exit(main())
