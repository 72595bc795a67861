"""Kill -9 mid-run and resume: the tiny stage-3 config continues from its last checkpoint at the same sampler
position and, on the CPU, with bit-identical losses to an uninterrupted run (SamplerStateHook + RNGStateHook +
SourceGroupedSampler(sample_seeds=True) + ResumableIterBasedTrainLoop, tools/train.py --resume).

One process by default; ``MMXSAM_TEST_NPROC=2`` runs the same check through tools/dist_train.sh (2 gloo
processes, about twice as long)."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch


MAX_ITERS, INTERVAL, KILL_AFTER_CKPT = 6, 2, 4
NPROC = int(os.environ.get('MMXSAM_TEST_NPROC', '1'))


def _command(repo_root, work_dir, nproc, port):
    opts = [f'train_cfg.max_iters={MAX_ITERS}', 'train_cfg.val_begin=1000000',  # no evaluation
            f'default_hooks.checkpoint.interval={INTERVAL}', 'default_hooks.logger.interval=1',
            'log_processor.window_size=1',  # log each iteration's own loss
            'model.init_cfg=None',  # no stage-1/2 checkpoints needed
            'train_dataloader.num_workers=2']
    args = [f'{repo_root}/configs/xsam/tiny_mixed.py', '--work-dir', work_dir, '--cfg-options', *opts]
    if nproc == 1:
        return [sys.executable, f'{repo_root}/tools/train.py', *args]
    return ['bash', f'{repo_root}/tools/dist_train.sh', args[0], str(nproc), *args[1:]]


def _env(port):
    return dict(os.environ, PYTHONUNBUFFERED='1', PYTHON=sys.executable, PORT=str(port))


def _losses(work_dir):
    """{iteration: (loss, grad_norm)} from every run (timestamp folder) of a work dir; later runs win."""
    out = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec:
                    out[rec['iter']] = (rec['loss'], rec['grad_norm'])
    return out


def _last_checkpoint(work_dir):
    path = osp.join(work_dir, 'last_checkpoint')
    return open(path).read().strip() if osp.isfile(path) else ''


def _run(cmd, cwd, port):
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=_env(port))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    return out.stdout + out.stderr


@pytest.mark.slow
def test_kill_9_then_resume_repeats_the_uninterrupted_losses(repo_root, shapes_workdir, tmp_path):
    cwd = shapes_workdir
    full_dir, killed_dir = str(tmp_path / 'full'), str(tmp_path / 'killed')
    _run(_command(repo_root, full_dir, NPROC, 29611), cwd, 29611)
    full = _losses(full_dir)
    assert sorted(full) == list(range(1, MAX_ITERS + 1))

    # the job is killed (SIGKILL to its whole process group: launcher and ranks) right after the checkpoint
    # of iteration KILL_AFTER_CKPT was written, while it trains the next iterations
    proc = subprocess.Popen(_command(repo_root, killed_dir, NPROC, 29612), cwd=cwd, env=_env(29612),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not _last_checkpoint(killed_dir).endswith(f'iter_{KILL_AFTER_CKPT}.pth'):
        assert proc.poll() is None and time.time() < deadline, 'the run ended before its checkpoint was written'
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    killed = _losses(killed_dir)
    assert max(killed) < MAX_ITERS  # really stopped mid-run
    assert all(killed[i] == full[i] for i in killed)

    meta = torch.load(osp.join(killed_dir, f'iter_{KILL_AFTER_CKPT}.pth'), map_location='cpu', weights_only=True)['meta']
    batch_size = 4
    assert meta['sampler_state']['position'] == KILL_AFTER_CKPT * batch_size  # per-rank samples trained
    assert meta['rng_state']['world_size'] == NPROC and len(meta['rng_state']['states']) == NPROC

    log = _run(_command(repo_root, killed_dir, NPROC, 29613) + ['--resume'], cwd, 29613)
    assert f'Fast-forwarded SourceGroupedSampler to iteration {KILL_AFTER_CKPT}' in log
    assert 'RNGStateHook: restored the random generators' in log
    resumed = _losses(killed_dir)  # the resumed run's iterations override the killed run's
    assert sorted(resumed) == list(range(1, MAX_ITERS + 1))
    # Measured: bit-identical losses and gradient norms in every 1-process run and most 2-process runs; one
    # 2-process run differed in the 8th digit of a gradient norm (CPU float32 run-to-run noise). Without
    # RNGStateHook and sample_seeds the first resumed loss differs in the 4th digit (55.824 vs 55.836).
    for it in range(KILL_AFTER_CKPT + 1, MAX_ITERS + 1):
        assert resumed[it] == pytest.approx(full[it], rel=1e-6, abs=0), (it, resumed[it], full[it])
