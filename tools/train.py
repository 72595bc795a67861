# Train an mmxsam (or any mmdet) model. Same arguments as mmdet's tools/train.py.
import argparse
import os
import sys

# the repository root, so that configs can import plugins from projects/ (mmdet's convention)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmengine.config import DictAction
from torch.distributed.elastic.multiprocessing.errors import record

import mmxsam  # noqa: F401  (registers modules and the safe checkpoint allow-list)
from mmxsam.utils.cli import apply_resume, build_runner, enable_amp, enable_auto_scale_lr, load_cli_config


def parse_args():
    parser = argparse.ArgumentParser(description='Train an X-SAM model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic mixed precision (AmpOptimWrapper, or bf16 in a DeepSpeed strategy)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='enable automatically scaling LR')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or with no value from the latest one in the work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_cfg.max_iters=10 "optim_wrapper.optimizer.lr=1e-4"')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


# under torchrun (dist_*.sh) a failing rank writes its exception to an error file, and torchrun's summary
# then shows that rank's traceback instead of only its exit code
@record
def main():
    args = parse_args()
    cfg = load_cli_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    apply_resume(cfg, args.resume)
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
