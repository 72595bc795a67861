# Evaluate a checkpoint. Same arguments as mmdet's tools/test.py (without TTA).
import argparse
import os
import sys
import os.path as osp

# the repository root, so that configs can import plugins from projects/ (mmdet's convention)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmengine.config import DictAction
from torch.distributed.elastic.multiprocessing.errors import record

import mmxsam  # noqa: F401  (registers modules and the safe checkpoint allow-list)
from mmxsam.utils.cli import build_runner, load_cli_config


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) an X-SAM model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save the file containing evaluation metrics')
    parser.add_argument('--out', type=str, help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory (inside work_dir) where painted images will be saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.get('default_hooks', {})
    if 'visualization' not in default_hooks:
        raise RuntimeError('--show/--show-dir need a `visualization` entry (DetVisualizationHook) in default_hooks')
    hook = default_hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        hook['test_out_dir'] = args.show_dir
    return cfg


# under torchrun (dist_*.sh) a failing rank writes its exception to an error file, and torchrun's summary
# then shows that rank's traceback instead of only its exit code
@record
def main():
    args = parse_args()
    if not osp.exists(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_cli_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    runner = build_runner(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out}')
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
