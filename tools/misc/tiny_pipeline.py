"""Train the three tiny X-SAM stages on the bundled synthetic data, then ask the stage-3 model a chat
question and a referring prompt in generation mode and draw the answers (the README's main job).

    python tools/misc/tiny_pipeline.py [--work-dir work_dirs] [--out-dir outputs/demo]
        [--stage1-iters 600] [--stage2-iters N] [--stage3-iters N]

Stage 1 (configs/xsam/tiny_seg_finetune.py) -> stage 2 (tiny_align_pretrain.py, loads stage 1's SAM) ->
stage 3 (tiny_mixed.py, loads stages 1 and 2); each stage reads the previous one through
``last://<work dir>``. A stage whose work dir already holds its final checkpoint is skipped (``--force``
retrains). Stage 2/3 iterations default to their configs' (400 / 1500); changing them rescales the
schedules (warm-up and cosine) accordingly.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STAGES = ('tiny_seg_finetune', 'tiny_align_pretrain', 'tiny_mixed')
CHAT_QUESTION = 'How many shapes are there in the image?'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='tiny X-SAM stages 1 -> 2 -> 3 and a demo')
    parser.add_argument('--data-root', default='data/shapes', help='synthetic data (with tokenizer/)')
    parser.add_argument('--work-dir', default='work_dirs', help='parent of the three stage work dirs')
    parser.add_argument('--out-dir', default='outputs/demo', help='where the demo pictures go')
    parser.add_argument('--stage1-iters', type=int, default=600, help='stage-1 iterations (config: 3000)')
    parser.add_argument('--stage2-iters', type=int, help='stage-2 iterations (default: the config\'s)')
    parser.add_argument('--stage3-iters', type=int, help='stage-3 iterations (default: the config\'s)')
    parser.add_argument('--image', help='demo image (default: the first val image of the referring split)')
    parser.add_argument('--force', action='store_true', help='retrain stages that are already done')
    return parser.parse_args(argv)


def schedule_options(iters, warmup=True):
    """--cfg-options for an iteration count: loop length, checkpoint interval, warm-up + cosine ends."""
    opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters + 1}',
            f'default_hooks.checkpoint.interval={iters}']
    if warmup:
        w = max(1, int(0.03 * iters))  # at least one warm-up iteration
        opts += [f'param_scheduler.0.end={w}', f'param_scheduler.1.begin={w}', f'param_scheduler.1.end={iters}']
    return opts


def run(cmd):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=os.getcwd(), check=True)


def train(stage, work_dir, options, force):
    """Train one stage with tools/train.py unless its work dir holds a finished run of this pipeline.

    Returns ``(seconds, skipped)``: the wall time of the run (for a skipped stage the time recorded in
    its ``pipeline_done`` marker when it was trained) and whether it was skipped.
    """
    stage_dir = osp.join(work_dir, stage)
    marker = osp.join(stage_dir, 'pipeline_done')
    if not force and osp.isfile(osp.join(stage_dir, 'last_checkpoint')) and osp.isfile(marker):
        print(f'{stage}: done before ({stage_dir}), skipped (--force retrains)')
        with open(marker) as f:
            recorded = f.read().split()
        return (float(recorded[0]) if recorded else None), True
    start = time.time()
    run([sys.executable, osp.join(REPO, 'tools/train.py'), osp.join(REPO, f'configs/xsam/{stage}.py'),
         '--work-dir', stage_dir, '--cfg-options', *options])
    seconds = time.time() - start
    with open(marker, 'w') as f:
        f.write(f'{seconds:.0f} s\n')
    return seconds, False


def check_data(data_root):
    """The synthetic data and its tokenizer must be at data/shapes (the tiny configs hold that path)."""
    if osp.normpath(data_root) != osp.normpath('data/shapes'):
        raise SystemExit('--data-root other than data/shapes: edit the configs\' data_root (they hold the '
                         'path in every data set and the tokenizer path)')
    if not osp.isfile(osp.join(data_root, 'tokenizer', 'tokenizer_config.json')):
        raise SystemExit(f'{data_root}/tokenizer is missing; run: python tools/misc/build_tiny_tokenizer.py '
                         f'{data_root} --out {data_root}/tokenizer')


def train_stages(work_dir, stage1_iters=600, stage2_iters=None, stage3_iters=None, force=False):
    """Stages 1 -> 2 -> 3 under ``work_dir`` (each loading the previous ones through ``last://``).

    Returns ``(stage-3 checkpoint path, {stage: (seconds, skipped)})``.
    """
    w = work_dir
    last = {s: f'last://{osp.join(w, s)}' for s in STAGES}
    times = {}
    times['tiny_seg_finetune'] = train('tiny_seg_finetune', w, schedule_options(stage1_iters, warmup=False), force)
    opts2 = [f'model.init_cfg.0.checkpoint={last["tiny_seg_finetune"]}']
    if stage2_iters:
        opts2 += schedule_options(stage2_iters)
    times['tiny_align_pretrain'] = train('tiny_align_pretrain', w, opts2, force)
    opts3 = [f'model.init_cfg.0.checkpoint={last["tiny_seg_finetune"]}',
             f'model.init_cfg.1.checkpoint={last["tiny_align_pretrain"]}']
    if stage3_iters:
        opts3 += schedule_options(stage3_iters)
    times['tiny_mixed'] = train('tiny_mixed', w, opts3, force)

    from mmxsam.utils import resolve_last_checkpoint
    return resolve_last_checkpoint(last['tiny_mixed']), times


def first_val_expression(data_root):
    """(image path, expression) of the first val referring expression of the synthetic data."""
    from mmengine.registry import init_default_scope
    import mmxsam  # noqa: F401
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    ds = DATASETS.build(dict(type='XSAMReferSegDataset', data_root=data_root, refer_file='refshapes/refs(unc).p',
                             ann_file='refshapes/instances.json', split='val', test_mode=True,
                             data_prefix=dict(img='images/'), pipeline=[]))
    info = ds.get_data_info(0)
    return info['img_path'], info['instances'][0]['sentences'][0]


def main(argv=None):
    args = parse_args(argv)
    check_data(args.data_root)
    checkpoint, _ = train_stages(args.work_dir, args.stage1_iters, args.stage2_iters, args.stage3_iters, args.force)
    w = args.work_dir
    image, expression = first_val_expression(args.data_root)
    image = args.image or image
    demo = [sys.executable, osp.join(REPO, 'demo/image_demo.py'), image, osp.join(REPO, 'configs/xsam/tiny_mixed.py'),
            checkpoint]
    run(demo + ['--task', 'imgconv', '--text', CHAT_QUESTION, '--out-file', osp.join(args.out_dir, 'chat.png')])
    run(demo + ['--task', 'refseg', '--text', expression, '--out-file', osp.join(args.out_dir, 'refseg.png')])
    print(f'tiny pipeline done: checkpoints under {w}/, pictures in {args.out_dir}/ (chat.png, refseg.png)')


if __name__ == '__main__':
    main()
