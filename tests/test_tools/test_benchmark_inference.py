"""tools/analysis_tools/benchmark_inference.py (subprocess from the repository root), random weights on the tiny
stage-3 config. Checks structure and values, not timings."""
import json
import os
import subprocess
import sys

TOOL = 'tools/analysis_tools/benchmark_inference.py'
TASKS = ['imgconv', 'genseg', 'ovseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg', 'intseg']


def run(repo_root, *args, timeout=180):
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='2')
    return subprocess.run([sys.executable, TOOL, *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_every_task_random_weights(repo_root, tiny_tokenizer_dir):
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--tokenizer', tiny_tokenizer_dir, '--repeats', '1',
              '--warmup', '0', '--cfg-options', 'model.test_cfg.max_new_tokens=6', '--json')
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    assert r['random_weights'] is True and r['checkpoint'] is None and r['max_new_tokens'] == 6
    assert list(r['tasks']) == TASKS
    for task, t in r['tasks'].items():
        assert t['mode'] == 'generation' and len(t['all_s']) == 1 and t['mean_s'] == t['min_s'] > 0
        # the answer text is re-tokenised: random tokens decoded to text need not re-encode one to one
        assert 0 <= t['answer_tokens'] <= 4 * 6
        assert (t['answer_tokens'] == 0) == (t['answer'].strip() == '')
        assert t['answer_tokens_per_s'] == t['answer_tokens'] / t['mean_s']
        assert isinstance(t['answer'], str) and t['num_masks'] >= 0


def test_teacher_forcing_table(repo_root, tiny_tokenizer_dir, tmp_path):
    out_file = tmp_path / 'inf.json'
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--tokenizer', tiny_tokenizer_dir, '--tasks', 'refseg',
              'vgdseg', '--mode', 'teacher_forcing', '--repeats', '2', '--warmup', '0', '--out', str(out_file))
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'RANDOM weights' in out.stdout and '| task | mode | latency ms (mean) |' in out.stdout
    r = json.loads(out_file.read_text())
    ref = r['tasks']['refseg']
    assert ref['mode'] == 'teacher_forcing' and ref['answer_tokens'] == 0 and len(ref['all_s']) == 2
    assert ref['num_masks'] == 1  # 'Sure, it is <SEG>.': one mask for the one expression


def test_bad_arguments_are_named(repo_root, tmp_path):
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--tasks', 'segment')
    assert out.returncode == 2 and "unknown task(s) ['segment']" in out.stderr
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', str(tmp_path / 'none.pth'))
    assert out.returncode == 2 and 'checkpoint not found' in out.stderr
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--device', 'gpu0')
    assert out.returncode == 2 and "unknown device 'gpu0'" in out.stderr
