"""Learning benchmark of the tiny X-SAM: train stages 1 -> 2 -> 3 on the synthetic data (CPU), evaluate every
task's tiny eval config (``configs/xsam/eval/tiny_shapes_*.py``) on the trained stage-3 model *and* on an
untrained one, and write the margins as JSON and a markdown table.

    python tools/analysis_tools/learning_benchmark.py [--work-dir work_dirs/learning]
        [--stage1-iters 600 --stage2-iters N --stage3-iters N] [--tasks refseg intseg ...]
        [--reuse CKPT] [--out results.json] [--markdown results.md] [--check [--thresholds default|ci]]

Training goes through ``tools/misc/tiny_pipeline.py`` (``train_stages``: tools/train.py per stage, finished
stages skipped); ``--reuse CKPT`` skips training and evaluates an existing stage-3 checkpoint (the training
wall times are then read from the mmengine logs of the stage work dirs next to it, when present).

The *untrained* model is the evaluation config's model built with the config's seed (``randomness.seed``)
and initialised as training would start it (``init_weights()``) but without the stage-1/2 checkpoints of its
``init_cfg``: random weights. It is saved as ``<work-dir>/untrained.pth`` and evaluated exactly like the
trained checkpoint (mmengine ``Runner.test()`` in this process, one runner per task and model).

Every task has a *primary* metric; the margin is trained - untrained on it. ``--check`` compares each margin
with the minimum of the threshold table (``--thresholds default`` for the default schedule, ``ci`` for the
CI-sized run of tests/test_tools/test_learning_benchmark.py) and exits with status 1 naming the tasks below it.
Run from the directory holding ``data/shapes`` (with ``tokenizer/``): the tiny configs read that path.
"""
import argparse
import gc
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EVAL_DIR = osp.join(REPO, 'configs', 'xsam', 'eval')


def _load_tiny_pipeline():
    spec = importlib.util.spec_from_file_location('tiny_pipeline', osp.join(REPO, 'tools', 'misc', 'tiny_pipeline.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny_pipeline = _load_tiny_pipeline()


@dataclass(frozen=True)
class Task:
    """One benchmark task: its tiny eval config, the metric that decides, the metrics shown in the table."""
    name: str
    config: str
    primary: str
    shown: Tuple[Tuple[str, str], ...]
    note: str = ''

    @property
    def config_path(self) -> str:
        return osp.join(EVAL_DIR, self.config)


def _interactive(prompt: str) -> Task:
    p = f'interactive_{prompt}'
    return Task(f'intseg_{prompt}', f'tiny_shapes_intseg_{prompt}.py', f'{p}/cIoU',
                ((f'{p}/cIoU', 'cIoU'), (f'{p}/gIoU', 'mIoU')))


def _vgd(prompt: str, prefix: Optional[str] = None, config: Optional[str] = None) -> Task:
    p = prefix or f'vgd_{prompt}'
    return Task(config or f'vgdseg_{prompt}', f'tiny_shapes_{config or "vgdseg_" + prompt}.py', f'{p}/AP',
                ((f'{p}/AP', 'AP'), (f'{p}/AP50', 'AP50')))


TASKS: Dict[str, Task] = {t.name: t for t in [
    Task('genseg', 'tiny_shapes_genseg.py', 'coco_panoptic/PQ',
         (('coco_panoptic/PQ', 'PQ'), ('coco_panoptic/PQ_th', 'PQ things'), ('coco_panoptic/PQ_st', 'PQ stuff'),
          ('coco/segm_mAP', 'mask AP'), ('sem_seg/mIoU', 'mIoU')),
         note='PQ things stays 0 at this size: the tiny model does not tell the six shapes apart (as the tiny '
              'stage 1); PQ moves through the stuff classes (background)'),
    Task('refseg', 'tiny_shapes_refseg.py', 'refer/cIoU', (('refer/cIoU', 'cIoU'), ('refer/gIoU', 'gIoU'))),
    Task('reaseg', 'tiny_shapes_reaseg.py', 'reason/gIoU', (('reason/gIoU', 'gIoU'), ('reason/cIoU', 'cIoU'))),
    Task('gcgseg', 'tiny_shapes_gcgseg.py', 'gcg/METEOR',
         (('gcg/METEOR', 'METEOR'), ('gcg/CIDEr', 'CIDEr'), ('gcg/AP50', 'mask AP50'), ('gcg/mIoU', 'mask mIoU')),
         note='mask AP50 / mIoU stay 0: the tiny model\'s generated captions loop on a phrase without reaching '
              '<SEG>, so it emits no GCG mask; the caption metric (METEOR) is what learns'),
    _interactive('point'), _interactive('scribble'), _interactive('box'), _interactive('mask'),
    _vgd('point'), _vgd('scribble'), _vgd('box'), _vgd('mask'),
    _vgd('point', prefix='vgd_cross_point', config='vgdseg_cross_point'),
    Task('imgconv', 'tiny_shapes_imgconv.py', 'chat/accuracy', (('chat/accuracy', 'accuracy'),)),
]}

# Minimum margin (trained - untrained, in points of the primary metric) per task.
#  default: the default schedule (stage 3 1500 iterations) on data/shapes (100 val images); measured margins
#           (README "Learning benchmark"): genseg 44.3, refseg 43.0, reaseg 65.6, gcgseg 11.9, intseg 56-62,
#           vgdseg 44-45, vgdseg_cross_point 24.6, imgconv 58.2; thresholds about half of them or less.
#  ci:      the CI-sized run of tests/test_tools/test_learning_benchmark.py (its schedule and data); a task
#           missing from a table is not checked by it (the CI run covers a subset).
THRESHOLDS: Dict[str, Dict[str, float]] = {
    'default': {
        'genseg': 15.0, 'refseg': 20.0, 'reaseg': 25.0, 'gcgseg': 5.0,
        'intseg_point': 25.0, 'intseg_scribble': 25.0, 'intseg_box': 25.0, 'intseg_mask': 25.0,
        'vgdseg_point': 20.0, 'vgdseg_scribble': 20.0, 'vgdseg_box': 20.0, 'vgdseg_mask': 20.0,
        'vgdseg_cross_point': 10.0, 'imgconv': 25.0,
    },
    # measured (two identical runs): genseg 4.3, refseg 19.7, reaseg 17.8, gcgseg 4.2, intseg_point 37.9,
    # intseg_box 44.0, vgdseg_point 20.2, vgdseg_cross_point 18.3
    'ci': {
        'genseg': 2.0, 'refseg': 8.0, 'reaseg': 8.0, 'gcgseg': 1.5, 'intseg_point': 15.0, 'intseg_box': 15.0,
        'vgdseg_point': 8.0, 'vgdseg_cross_point': 6.0,
    },
}


def parse_tasks(names: Optional[Sequence[str]]) -> List[str]:
    """Task names in table order; ``None``/``all`` = every task, ``intseg``/``vgdseg`` = their prompt types."""
    if not names or list(names) == ['all']:
        return list(TASKS)
    chosen = set()
    for name in names:
        group = [t for t in TASKS if t.startswith(name + '_')] if name in ('intseg', 'vgdseg') else []
        if name in TASKS:
            chosen.add(name)
        elif group:
            chosen.update(group)
        else:
            raise ValueError(f'unknown task {name!r}; choose from: all, intseg, vgdseg, {", ".join(TASKS)}')
    return [t for t in TASKS if t in chosen]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='tiny X-SAM learning benchmark: trained vs untrained on every task')
    parser.add_argument('--work-dir', default='work_dirs/learning', help='stage work dirs, untrained.pth, evals')
    parser.add_argument('--stage1-iters', type=int, default=600, help='stage-1 iterations')
    parser.add_argument('--stage2-iters', type=int, help="stage-2 iterations (default: the config's, 400)")
    parser.add_argument('--stage3-iters', type=int, help="stage-3 iterations (default: the config's, 1500)")
    parser.add_argument('--force', action='store_true', help='retrain stages already trained in --work-dir')
    parser.add_argument('--tasks', nargs='+', help=f'tasks to evaluate (default all): {", ".join(TASKS)}; '
                                                   'intseg / vgdseg = all their prompt types')
    parser.add_argument('--reuse', metavar='CKPT', help='evaluate this stage-3 checkpoint instead of training')
    parser.add_argument('--out', help='results JSON (default: <work-dir>/results.json)')
    parser.add_argument('--markdown', help='results table (default: <work-dir>/results.md)')
    parser.add_argument('--check', action='store_true', help='exit 1 when a margin is below its threshold')
    parser.add_argument('--thresholds', choices=sorted(THRESHOLDS), default='default', help='threshold table')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch / OpenMP threads of the evaluations and the training runs (default 1: the tiny '
                             'model gains little from more, and on a shared CPU OpenMP spin-waiting makes 2 threads '
                             'several times slower than 1)')
    parser.add_argument('--verbose', action='store_true', help="keep mmengine's INFO logs of the evaluations")
    args = parser.parse_args(argv)
    try:
        args.tasks = parse_tasks(args.tasks)
    except ValueError as e:
        parser.error(str(e))
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    for name in ('stage1_iters', 'stage2_iters', 'stage3_iters'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    if args.reuse and not osp.isfile(args.reuse):
        parser.error(f'--reuse checkpoint not found: {args.reuse}')
    if args.reuse and (args.force or args.stage2_iters or args.stage3_iters):
        parser.error('--reuse evaluates an existing checkpoint: it takes no --force / --stage*-iters')
    return args


# ---------------------------------------------------------------------------------------------- training
_LOG_TIME = re.compile(r'^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) - mmengine')


def logged_training(stage_dir: str) -> Optional[dict]:
    """Iterations and wall time of the run that wrote ``stage_dir``'s last checkpoint, from its mmengine log
    (first log line to the line saving that checkpoint); ``None`` when the log is not there."""
    last = osp.join(stage_dir, 'last_checkpoint')
    if not osp.isfile(last):
        return None
    with open(last) as f:
        ckpt = f.read().strip()
    m = re.search(r'iter_(\d+)\.pth$', ckpt)
    if not m:
        return None
    iters = int(m.group(1))
    for log in sorted(glob.glob(osp.join(stage_dir, '*', '*.log')), reverse=True):
        with open(log, errors='replace') as f:
            lines = f.readlines()
        stamps = [_LOG_TIME.match(line) for line in lines]
        saved = [s for s, line in zip(stamps, lines) if s and f'Saving checkpoint at {iters} iterations' in line]
        first = next((s for s in stamps if s), None)
        if saved and first:
            parse = lambda s: datetime.strptime(s.group(1), '%Y/%m/%d %H:%M:%S')  # noqa: E731
            return dict(iters=iters, seconds=(parse(saved[-1]) - parse(first)).total_seconds(),
                        source=osp.relpath(log))
    return dict(iters=iters, seconds=None, source=None)


def train(args) -> Tuple[str, dict]:
    """Run the tiny pipeline's three stages; returns (stage-3 checkpoint, per-stage record)."""
    tiny_pipeline.check_data('data/shapes')
    checkpoint, times = tiny_pipeline.train_stages(args.work_dir, args.stage1_iters, args.stage2_iters,
                                                   args.stage3_iters, args.force)
    stages = {}
    for stage, (seconds, skipped) in times.items():
        record = logged_training(osp.join(args.work_dir, stage)) or {}
        stages[stage] = dict(iters=record.get('iters'), seconds=seconds,
                             source='trained now' if not skipped else 'trained before (pipeline_done marker)')
    return checkpoint, stages


def reused_training(checkpoint: str) -> dict:
    """What the logs next to a reused stage-3 checkpoint say about its three stages."""
    stage3_dir = osp.dirname(osp.abspath(checkpoint))
    parent = osp.dirname(stage3_dir)
    dirs = dict(tiny_seg_finetune=osp.join(parent, 'tiny_seg_finetune'),
                tiny_align_pretrain=osp.join(parent, 'tiny_align_pretrain'), tiny_mixed=stage3_dir)
    stages = {}
    for stage, d in dirs.items():
        record = logged_training(d)
        stages[stage] = dict(iters=None, seconds=None, source='no log found') if record is None else dict(
            record, source=f'mmengine log {record["source"]}' if record['source'] else 'no log found')
    return stages


# -------------------------------------------------------------------------------------------- evaluation
def _quiet(cfg, verbose: bool):
    if not verbose:
        cfg.log_level = 'WARNING'


def build_untrained(config: str, path: str, verbose: bool = False) -> int:
    """Save the model of ``config`` with random weights (its seed, ``init_weights()``, no pretrained
    ``init_cfg``) to ``path``; returns the seed."""
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
    from mmxsam.utils.cli import build_runner, load_cli_config
    cfg = load_cli_config(config, work_dir=osp.join(osp.dirname(path), 'untrained_build'))
    seed = cfg.get('randomness', {}).get('seed')
    if seed is None:
        raise ValueError(f'{config} sets no randomness.seed: the untrained model would not be reproducible')
    cfg.model.init_cfg = None  # no stage-1/2 checkpoints: random weights
    cfg.load_from = None
    cfg.experiment_name = f'untrained_build_{time.time_ns()}'
    _quiet(cfg, verbose)
    runner = build_runner(cfg)  # sets the seed before building the model
    runner.model.init_weights()
    state = weights_to_cpu(runner.model.state_dict())
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    save_checkpoint(dict(meta=dict(seed=seed, note=f'untrained: {osp.relpath(config, REPO)} built with seed {seed}, '
                                                   'init_weights() without init_cfg'), state_dict=state), path)
    del runner
    gc.collect()
    return seed


def evaluate(task: Task, checkpoint: str, work_dir: str, verbose: bool = False) -> Tuple[Dict[str, float], float]:
    """``tools/test.py task.config checkpoint`` in this process; returns (metrics, seconds)."""
    from mmxsam.utils.cli import build_runner, load_cli_config
    start = time.time()
    cfg = load_cli_config(task.config_path, work_dir=work_dir)
    cfg.load_from = checkpoint
    cfg.experiment_name = f'{task.name}_{time.time_ns()}'
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    for ev in evaluators:
        if 'export_file' in ev:  # the chat predictions go next to this evaluation, not to a shared path
            ev['export_file'] = osp.join(work_dir, osp.basename(ev['export_file']))
    _quiet(cfg, verbose)
    runner = build_runner(cfg)
    metrics = runner.test()
    del runner
    gc.collect()
    out = {}
    for key, value in metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue  # per-class tables and the like
        if key.startswith('coco/segm_'):  # mmdet's CocoMetric reports fractions; every other metric is in percent
            out[key] *= 100.0
    return out, time.time() - start


# ------------------------------------------------------------------------------------------------ report
def task_result(task: Task, trained: Dict[str, float], untrained: Dict[str, float]) -> dict:
    if task.primary not in trained or task.primary not in untrained:
        raise KeyError(f'{task.name}: primary metric {task.primary!r} missing from the evaluation results '
                       f'(trained: {sorted(trained)}, untrained: {sorted(untrained)})')
    return dict(config=osp.relpath(task.config_path, REPO), primary=task.primary,
                trained=trained, untrained=untrained, margin=trained[task.primary] - untrained[task.primary],
                note=task.note)


def check(results: dict, table: str) -> List[str]:
    """Failures (``'task: margin m < threshold t'``) of the tasks ``results`` holds and ``table`` checks."""
    thresholds = THRESHOLDS[table]
    failures = []
    for name, r in results['tasks'].items():
        if name not in thresholds:
            continue
        if not r['margin'] >= thresholds[name]:  # also fails on NaN
            failures.append(f'{name}: {r["primary"]} margin {r["margin"]:.2f} < {thresholds[name]:.2f}')
    return failures


def _fmt_time(seconds: Optional[float]) -> str:
    if seconds is None:
        return 'n/a'
    m, s = divmod(int(round(seconds)), 60)
    return f'{m}m{s:02d}s' if m else f'{s}s'


def to_markdown(results: dict, table: Optional[str] = None) -> str:
    """The results as a markdown table (one row per task) plus the training record."""
    thresholds = THRESHOLDS.get(table or results.get('thresholds') or 'default', {})
    lines = ['| task | primary metric | untrained | trained | margin | min margin | other metrics (untrained -> '
             'trained) | eval time (trained / untrained) |', '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for name, r in results['tasks'].items():
        task = TASKS[name]
        label = dict(task.shown).get(r['primary'], r['primary'])
        others = ', '.join(f'{lab} {r["untrained"].get(k, float("nan")):.1f} -> {r["trained"].get(k, float("nan")):.1f}'
                           for k, lab in task.shown if k != r['primary'])
        if task.note:
            others += f' ({task.note})'
        threshold = f'{thresholds[name]:.1f}' if name in thresholds else '-'
        times = r.get('seconds', {})
        lines.append(f'| {name} | {label} | {r["untrained"][r["primary"]]:.1f} | {r["trained"][r["primary"]]:.1f} | '
                     f'{r["margin"]:+.1f} | {threshold} | {others or "-"} | '
                     f'{_fmt_time(times.get("trained"))} / {_fmt_time(times.get("untrained"))} |')
    lines += ['', '| stage | iterations | wall time | source |', '| --- | --- | --- | --- |']
    for stage, rec in results.get('training', {}).items():
        lines.append(f'| {stage} | {rec.get("iters") if rec.get("iters") is not None else "n/a"} | '
                     f'{_fmt_time(rec.get("seconds"))} | {rec.get("source", "")} |')
    lines += ['', f'seed {results.get("seed")}; trained checkpoint `{results.get("checkpoint")}`; untrained '
                  f'checkpoint `{results.get("untrained_checkpoint")}`; total wall time '
                  f'{_fmt_time(results.get("seconds_total"))}.']
    if results.get('check') is not None:
        failed = results['check']['failures']
        lines.append(f'check ({results["check"]["thresholds"]} thresholds): '
                     + ('passed' if not failed else 'FAILED: ' + '; '.join(failed)))
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):  # inherited by the training subprocesses
        os.environ[var] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    import mmxsam  # noqa: F401  (registers modules and the safe checkpoint allow-list)
    if args.reuse:
        checkpoint, training = args.reuse, reused_training(args.reuse)
    else:
        checkpoint, training = train(args)
    tasks = [TASKS[t] for t in args.tasks]
    untrained_ckpt = osp.join(args.work_dir, 'untrained.pth')
    seed = build_untrained(tasks[0].config_path, untrained_ckpt, args.verbose)
    results = dict(seed=seed, threads=args.threads, checkpoint=checkpoint, untrained_checkpoint=untrained_ckpt, training=training,
                   thresholds=args.thresholds, tasks={})
    for task in tasks:
        scores, seconds = {}, {}
        for which, ckpt in (('trained', checkpoint), ('untrained', untrained_ckpt)):
            scores[which], seconds[which] = evaluate(task, ckpt, osp.join(args.work_dir, 'eval', which, task.name),
                                                     args.verbose)
        results['tasks'][task.name] = dict(task_result(task, scores['trained'], scores['untrained']), seconds=seconds)
        r = results['tasks'][task.name]
        print(f'[learning_benchmark] {task.name}: {task.primary} untrained {r["untrained"][task.primary]:.2f} '
              f'trained {r["trained"][task.primary]:.2f} margin {r["margin"]:+.2f} '
              f'({seconds["trained"]:.0f} s + {seconds["untrained"]:.0f} s)', flush=True)
    failures = check(results, args.thresholds) if args.check else None
    results['check'] = None if failures is None else dict(thresholds=args.thresholds, failures=failures)
    results['seconds_total'] = time.time() - start
    out = args.out or osp.join(args.work_dir, 'results.json')
    md = args.markdown or osp.join(args.work_dir, 'results.md')
    for path in (out, md):
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(results, f, indent=1)
    table = to_markdown(results)
    with open(md, 'w') as f:
        f.write(table)
    print(table)
    print(f'[learning_benchmark] wrote {out} and {md}')
    if failures:
        print('[learning_benchmark] below the minimum margin: ' + '; '.join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
