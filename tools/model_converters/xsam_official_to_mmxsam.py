"""Convert a released X-SAM checkpoint (official key layout) to mmxsam's names, or back with --reverse.

    python tools/model_converters/xsam_official_to_mmxsam.py IN.bin OUT.pth [--reverse] [--stage 1|2|3]

IN is a flat state dict (the official ``pytorch_model.bin``) or an mmengine checkpoint (``state_dict``
inside); it is read with ``torch.load(weights_only=True)`` (importing mmxsam allow-lists what mmengine
puts in a checkpoint's ``meta``, so mmxsam training checkpoints load too). OUT is saved in mmengine's layout,
``dict(state_dict=..., meta=dict(converted_from=IN, ...))``. The report lists every input key that was
not converted (``mmxsam/utils/official_checkpoint.py`` holds the rule tables); ``--strict`` makes any
unmatched key an error (exit status 1, nothing written).
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmxsam.utils.official_checkpoint import (format_report, mmxsam_to_official,  # noqa: E402
                                              official_to_mmxsam)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='input checkpoint (official pytorch_model.bin, or mmxsam .pth with --reverse)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--reverse', action='store_true', help='mmxsam -> official instead')
    parser.add_argument('--stage', type=int, choices=(1, 2, 3), default=None,
                        help='accept (or, with --reverse, emit) only the groups of this released stage')
    parser.add_argument('--strict', action='store_true', help='fail if any input key is unmatched')
    return parser.parse_args(argv)


def load_state_dict(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
        ckpt = ckpt['state_dict']
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ValueError(f'{path} is not a flat state dict of tensors')
    return ckpt


def main(argv=None):
    args = parse_args(argv)
    state_dict = load_state_dict(args.src)
    convert = mmxsam_to_official if args.reverse else official_to_mmxsam
    new_state_dict, report = convert(state_dict, stage=args.stage)
    print(format_report(report))
    if args.strict and report['unmatched']:
        print(f"error: {len(report['unmatched'])} unmatched keys (--strict); nothing written", file=sys.stderr)
        return 1
    meta = dict(converted_from=osp.abspath(args.src), direction=report['direction'], stage=args.stage,
                unmatched=list(report['unmatched']))
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=new_state_dict, meta=meta), args.dst)
    print(f'saved {len(new_state_dict)} keys to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
