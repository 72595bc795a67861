"""Merge a DeepSpeed ZeRO checkpoint folder (what mmengine's DeepSpeedStrategy saves) into one mmengine .pth.

    python tools/model_converters/deepspeed_to_pth.py work_dirs/mixed/iter_2000.pth xsam_s3.pth
        [--dtype fp32|bf16|fp16] [--exclude-frozen] [--trainable-only CONFIG]

IN is the folder ``iter_N.pth/`` (``*model_states.pt`` + the ZeRO partitions ``*optim_states.pt``, any ZeRO
stage and world size); the fp32 master weights are merged with ``deepspeed.utils.zero_to_fp32``. OUT is
``dict(meta=..., state_dict=...)`` (meta: the run's meta plus ``converted_from``, ``zero_stage``,
``dp_world_size``), loadable by ``load_from``, ``init_cfg=dict(type='Pretrained', ...)``, ``tools/test.py``.
The optimizer states are dropped: resume DeepSpeed runs from the folder itself (``--resume``).
``--trainable-only CONFIG`` keeps only the parameters that train in CONFIG (see export_trainable.py).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmxsam.utils.state_dict_dtype import CHECKPOINT_DTYPES  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='DeepSpeed checkpoint folder (work_dir/iter_N.pth)')
    parser.add_argument('dst', help='output .pth file')
    parser.add_argument('--dtype', choices=sorted(CHECKPOINT_DTYPES), default='fp32',
                        help='floating-point type of OUT')
    parser.add_argument('--exclude-frozen', action='store_true', help='leave out parameters that did not train')
    parser.add_argument('--trainable-only', metavar='CONFIG',
                        help='keep only the parameters that train in this config (built on the meta device)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmxsam  # noqa: F401  (registers modules; safe-load allow-list)
    from mmengine.runner.checkpoint import save_checkpoint

    from mmxsam.utils.deepspeed_checkpoint import load_deepspeed_checkpoint
    checkpoint = load_deepspeed_checkpoint(args.src, exclude_frozen_parameters=args.exclude_frozen,
                                           dtype=CHECKPOINT_DTYPES[args.dtype])
    if args.trainable_only:
        from mmxsam.utils.trainable import select_trainable, trainable_parameter_names
        names = trainable_parameter_names(args.trainable_only)
        checkpoint['state_dict'], dropped = select_trainable(checkpoint['state_dict'], names, args.trainable_only)
        checkpoint['meta']['trainable_only'] = args.trainable_only
        print(f'kept the {len(checkpoint["state_dict"])} trainable tensors of {args.trainable_only}, dropped '
              f'{len(dropped)}')
    checkpoint.pop('message_hub', None)  # training-loop statistics: a converted file is weights + meta
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    save_checkpoint(checkpoint, args.dst)
    numel = sum(v.numel() for v in checkpoint['state_dict'].values())
    print(f'{args.src} (ZeRO-{checkpoint["meta"]["zero_stage"]}, {checkpoint["meta"]["dp_world_size"]} '
          f'process(es)) -> {args.dst}: {len(checkpoint["state_dict"])} tensors, {numel:,} elements, {args.dtype}')


if __name__ == '__main__':
    main()
