"""The command-line tools, run as a user runs them (subprocesses from the repository root)."""
import os
import os.path as osp
import subprocess
import sys

import pytest

BASELINE = 'configs/baselines/mask2former_r18_tiny_shapes_panoptic.py'


def shapes_overrides(root):
    """--cfg-options pointing every data path of the baseline config at ``root``."""
    out = []
    for split in ('train', 'val', 'test'):
        out.append(f'{split}_dataloader.dataset.data_root={root}')
    for ev in ('val_evaluator', 'test_evaluator'):
        out += [f'{ev}.0.ann_file={root}/annotations/panoptic_val.json',
                f'{ev}.0.seg_prefix={root}/annotations/panoptic_val/',
                f'{ev}.1.ann_file={root}/annotations/instances_val.json']
    return out


def run(repo_root, *args, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_generate_shapes_cli(repo_root, tmp_path):
    out = run(repo_root, 'tools/dataset_converters/generate_shapes.py', str(tmp_path / 'd'), '--num-train', '3',
              '--num-val', '2', '--no-progress', '--render', '1')
    assert out.returncode == 0, out.stderr
    assert 'generated in' in out.stdout and "images {'train': 3, 'val': 2}" in out.stdout
    assert osp.exists(tmp_path / 'd' / 'browse' / 'overview_shapes_val_000000.png')
    again = run(repo_root, 'tools/dataset_converters/generate_shapes.py', str(tmp_path / 'd'), '--num-train', '3',
                '--num-val', '2', '--no-progress')
    assert 'reused existing data' in again.stdout


def test_generate_shapes_cli_rejects_bad_parameters(repo_root, tmp_path):
    out = run(repo_root, 'tools/dataset_converters/generate_shapes.py', str(tmp_path / 'd'), '--image-size', '8')
    assert out.returncode == 2
    assert 'image_size must be an integer in [32, 4096], got 8' in out.stderr


@pytest.mark.slow
def test_train_then_test(repo_root, shapes_root, tmp_path):
    work = str(tmp_path / 'work')
    data = shapes_overrides(shapes_root)
    out = run(repo_root, 'tools/train.py', BASELINE, '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2',
              'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2', *data)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert osp.exists(osp.join(work, 'iter_2.pth'))
    out = run(repo_root, 'tools/train.py', BASELINE, '--work-dir', work, '--resume', '--cfg-options',
              'train_cfg.max_iters=3', 'train_cfg.val_interval=100', *data)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 2' in out.stdout + out.stderr
    out = run(repo_root, 'tools/test.py', BASELINE, osp.join(work, 'iter_2.pth'), '--work-dir', work,
              '--out', str(tmp_path / 'preds.pkl'), '--cfg-options', *data)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'coco_panoptic/PQ' in log and 'coco/segm_mAP' in log
    assert osp.exists(tmp_path / 'preds.pkl')


def test_test_tool_names_a_missing_checkpoint(repo_root, tmp_path):
    out = run(repo_root, 'tools/test.py', BASELINE, str(tmp_path / 'nope.pth'))
    assert out.returncode != 0 and 'checkpoint not found' in out.stderr


@pytest.mark.slow
def test_browse_dataset(repo_root, shapes_root, tmp_path):
    out = run(repo_root, 'tools/analysis_tools/browse_dataset.py', 'configs/_base_/datasets/shapes_panoptic.py',
              '--output-dir', str(tmp_path / 'vis'), '--not-show', '--show-number', '2', '--cfg-options',
              f'train_dataloader.dataset.data_root={shapes_root}')
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / 'vis')) == ['shapes_train_000000.png', 'shapes_train_000001.png']


def test_shell_launchers_are_valid_bash(repo_root):
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh', 'slurm_test.sh', 'setup_env.sh'):
        out = subprocess.run(['bash', '-n', osp.join(repo_root, 'tools', name)], capture_output=True, text=True)
        assert out.returncode == 0, (name, out.stderr)


def test_dist_train_usage_message(repo_root):
    out = subprocess.run(['bash', osp.join(repo_root, 'tools', 'dist_train.sh')], capture_output=True, text=True)
    assert out.returncode != 0 and 'usage: tools/dist_train.sh CONFIG GPUS' in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize('config', [BASELINE, 'configs/xsam/tiny_seg_finetune.py'])
def test_dist_train_two_cpu_processes(repo_root, shapes_root, tmp_path, config):
    """tools/dist_train.sh CONFIG 2 on a machine without CUDA: gloo, DDP on CPU, both ranks train."""
    work = str(tmp_path / 'dist')
    env = dict(os.environ, PYTHON=sys.executable, PORT='29531', PYTHONUNBUFFERED='1')
    out = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2',
         'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
         *shapes_overrides(shapes_root)],
        cwd=repo_root, capture_output=True, text=True, timeout=600, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert 'distributed backend nccl -> gloo' in log and 'Iter(train) [2/2]' in log
    assert "'world_size': 2" in log or 'world_size: 2' in log or 'Distributed training: True' in log
    assert osp.exists(osp.join(work, 'iter_2.pth'))
