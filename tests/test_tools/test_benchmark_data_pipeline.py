"""tools/analysis_tools/benchmark_data_pipeline.py, run as a user runs it (subprocess from the repository root)."""
import json
import os
import subprocess
import sys

TOOL = 'tools/analysis_tools/benchmark_data_pipeline.py'
TABLE_HEAD = ('| task | samples/s | masks/sample | target bytes/sample (ours) | int64 layout bytes/sample | ratio |')


def run(repo_root, *args, timeout=120):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([sys.executable, TOOL, *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_benchmark_reports_rates_and_the_lean_layout(repo_root, shapes_root, tiny_tokenizer_dir, tmp_path):
    out_json = tmp_path / 'bench' / 'results.json'
    out = run(repo_root, '--data-root', shapes_root, '--tokenizer', tiny_tokenizer_dir, '--num-samples', '3',
              '--warmup', '1', '--scale', '256', '--tasks', 'genseg', 'refseg', '--out', str(out_json))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count(TABLE_HEAD) == 1
    rows = {line.split('|')[1].strip(): line for line in out.stdout.splitlines() if line.startswith('| ')}
    assert set(rows) == {'task', 'genseg', 'refseg'}

    data = json.loads(out_json.read_text())
    assert data['settings']['scale'] == 256 and data['settings']['num_samples'] == 3
    assert set(data['results']) == {'genseg', 'refseg'}
    for task, r in data['results'].items():
        assert r['num_samples'] == 3 and r['warmup'] == 1 and r['dataset_len'] > 0
        assert r['samples_per_s'] > 0 and r['seconds'] > 0
        assert r['masks_per_sample'] > 0
        # uint8 masks at the resized size (<= 256 x 256) vs int64 at 256 x 256
        assert 0 < r['target_bytes_per_sample'] <= r['masks_per_sample'] * 256 * 256
        assert r['int64_bytes_per_sample'] == r['masks_per_sample'] * 256 * 256 * 8
        assert r['target_bytes_per_sample'] < r['int64_bytes_per_sample'] and r['ratio'] >= 8 - 1e-6
        assert r['traced_peak_bytes_max'] >= r['traced_peak_bytes_per_sample'] > 0
        assert r['rss_peak_increase_bytes'] >= 0 and r['rss_source'] in ('VmHWM', 'ru_maxrss')
        cells = [c.strip() for c in rows[task].split('|')[1:-1]]
        assert float(cells[1]) > 0 and float(cells[2]) == round(r['masks_per_sample'], 2)
        assert cells[5] == f"{r['ratio']:.1f}x"


def test_missing_data_root_and_tokenizer_are_named(repo_root, shapes_root, tmp_path):
    missing = str(tmp_path / 'no_shapes')
    out = run(repo_root, '--data-root', missing, '--tokenizer', str(tmp_path / 'tok'))
    assert out.returncode != 0
    assert missing in out.stderr and 'generate_shapes.py' in out.stderr

    tok = str(tmp_path / 'no_tokenizer')
    out = run(repo_root, '--data-root', shapes_root, '--tokenizer', tok, '--tasks', 'genseg')
    assert out.returncode != 0
    assert tok in out.stderr and 'build_tiny_tokenizer.py' in out.stderr

    out = run(repo_root, '--data-root', str(tmp_path), '--tokenizer', tok, '--tasks', 'refseg')
    assert out.returncode != 0 and 'refs(unc).p' in out.stderr and 'generate_shapes.py' in out.stderr
