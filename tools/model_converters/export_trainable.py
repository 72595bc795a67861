"""Keep only the weights that train under a config (trainable-only export of a checkpoint).

    python tools/model_converters/export_trainable.py CONFIG CKPT OUT [--dtype fp32|bf16|fp16]

CONFIG: the config whose trainable parameters are kept (its model is built on the meta device; e.g.
configs/xsam/align_pretrain.py keeps the two projectors). CKPT: an mmengine checkpoint (``.pth``, read with
``torch.load(weights_only=True)``), a DeepSpeed checkpoint folder, or ``last://WORK_DIR``. OUT:
``dict(meta=..., state_dict=...)`` with ``meta.trainable_only = CONFIG`` and the dropped keys counted; it
loads with ``init_cfg=dict(type='Pretrained', checkpoint=OUT)`` (strict=False) like the full checkpoint.
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmxsam.utils.state_dict_dtype import CHECKPOINT_DTYPES, cast_floating  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config whose trainable parameters are kept')
    parser.add_argument('checkpoint', help='.pth file, DeepSpeed folder or last://WORK_DIR')
    parser.add_argument('out', help='output .pth file')
    parser.add_argument('--dtype', choices=sorted(CHECKPOINT_DTYPES),
                        help='cast floating-point tensors (default: keep)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmxsam  # noqa: F401  (registers modules, last:// and deepspeed://, the safe-load allow-list)
    from mmengine.runner.checkpoint import CheckpointLoader, save_checkpoint

    from mmxsam.utils.deepspeed_checkpoint import is_deepspeed_checkpoint, load_deepspeed_checkpoint
    from mmxsam.utils.trainable import select_trainable, trainable_parameter_names
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config not found: {args.config}')
    if is_deepspeed_checkpoint(args.checkpoint):
        checkpoint = load_deepspeed_checkpoint(args.checkpoint)
    elif args.checkpoint.startswith('last://') or osp.isfile(args.checkpoint):
        checkpoint = CheckpointLoader.load_checkpoint(args.checkpoint, map_location='cpu')
    else:
        raise FileNotFoundError(f'checkpoint not found (a .pth file, a DeepSpeed folder or last://WORK_DIR): '
                                f'{args.checkpoint}')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f'{args.checkpoint} holds no state dict of tensors')
    kept, dropped = select_trainable(state_dict, trainable_parameter_names(args.config), args.config)
    kept = cast_floating(kept, CHECKPOINT_DTYPES.get(args.dtype))
    meta = dict(checkpoint.get('meta', {}) or {})
    meta.update(trainable_only=args.config, exported_from=args.checkpoint, num_dropped=len(dropped))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    save_checkpoint(dict(meta=meta, state_dict=kept), args.out)
    numel = sum(v.numel() for v in kept.values())
    print(f'{args.checkpoint} -> {args.out}: kept {len(kept)} trainable tensors ({numel:,} elements), dropped '
          f'{len(dropped)} (frozen parameters and buffers)')


if __name__ == '__main__':
    main()
