"""tools/analysis_tools/benchmark_train_step.py on the tiny stage-3 config (subprocess from the repository root).
Checks structure and consistency, not timings."""
import json
import os
import subprocess
import sys

TOOL = 'tools/analysis_tools/benchmark_train_step.py'
GROUPS = {'data preprocessor', 'encoders', 'projectors/connector', 'LLM', 'seg head forward', 'Hungarian matching',
          'losses', 'backward', 'optimizer'}


def run(repo_root, *args, timeout=180):
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='2')
    return subprocess.run([sys.executable, TOOL, *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_tiny_stage3_step(repo_root, shapes_root, tiny_tokenizer_dir, tmp_path):
    out_file = tmp_path / 'step.json'
    # --batch-size 2: every batch from one source (SourceGroupedSampler); refseg/genseg/... have decoder items
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--iters', '2', '--warmup', '0', '--batch-size', '2',
              '--data-root', shapes_root, '--tokenizer', tiny_tokenizer_dir, '--probe-size', '256', '--seed', '3',
              '--json', '--out', str(out_file))
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    assert json.loads(out_file.read_text()) == r
    assert r['device'] == 'cpu' and r['batch_size'] == 2 and len(r['batches']) == 2
    assert all(b['size'] == 2 and len(b['tasks']) == 1 for b in r['batches'])  # one source per batch
    st = r['step_time']
    assert len(st['all']) == 2 and 0 < st['min'] <= st['mean'] <= st['max']
    assert r['samples_per_s'] == 4 / sum(st['all'])
    # every sample carries 80 visual tokens (16 SigLIP + 64 SAM) plus its text
    assert r['tokens_per_step'] > 2 * 80 and r['tokens_per_s'] <= r['padded_tokens_per_s']
    assert r['peak_memory']['bytes'] > 50 * 2**20 and r['peak_memory']['source'] in ('VmHWM', 'ru_maxrss')
    c = r['components']
    assert set(c['groups']) <= GROUPS and {'encoders', 'LLM', 'backward', 'optimizer'} <= set(c['groups'])
    assert all(v >= 0 for v in c['per_module'].values())
    assert abs(sum(c['groups'].values()) - c['sum']) < 1e-9
    assert c['framework_overhead'] == c['hooked_step_time'] / c['sum'] and c['framework_overhead'] >= 1.0
    f = r['flops']
    assert f['per_step'] > 0 and f['measured_per_step'] > 0 and 0.5 < f['per_step'] / f['measured_per_step'] < 2
    assert f['peak_source'] == 'matmul probe 256^2 float32' and f['mfu'] == f['achieved'] / f['peak_flops']
    lt = r['loss_tensors']
    if 'note' not in lt:  # a batch with decoder items: nothing of Q x H x W in matching or losses
        assert lt['num_queries'] == 20 and lt['input_hw'] == [128, 128]
        for phase in ('matching', 'losses'):
            assert lt[phase]['numel'] <= lt['g_H_W'] and lt[phase]['vs_g_H_W'] <= 1.0


def test_table_and_no_breakdown(repo_root, shapes_root, tiny_tokenizer_dir):
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--iters', '1', '--warmup', '0', '--batch-size', '1',
              '--data-root', shapes_root, '--tokenizer', tiny_tokenizer_dir, '--no-breakdown', '--no-flops')
    assert out.returncode == 0, out.stderr[-3000:]
    assert '| batch | step ms (mean) | min | max | samples/s | LLM tokens/s | peak memory |' in out.stdout
    assert '| component |' not in out.stdout and 'MFU' not in out.stdout


def test_bad_arguments_are_named(repo_root, tmp_path):
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--device', 'tpu')
    assert out.returncode == 2 and "unknown device 'tpu'" in out.stderr and 'Traceback' not in out.stderr
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--cfg-options', 'optim_wrapper.optimizer.lrr=1')
    assert out.returncode == 2 and "unknown config key 'optim_wrapper.optimizer.lrr'" in out.stderr
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--tokenizer', str(tmp_path / 'none'))
    assert out.returncode == 2 and 'folder not found' in out.stderr
