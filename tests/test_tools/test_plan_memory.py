"""tools/analysis_tools/plan_memory.py, run as a user runs it (subprocess from the repository root)."""
import json
import os
import subprocess
import sys

TOOL = 'tools/analysis_tools/plan_memory.py'
# full size (configs/xsam/mixed.py on the meta device), as in README "Stages 2 and 3"
FULL_PARAMS = dict(llm=3_820_772_352, vision_encoder=428_225_600, backbone=308_278_272, seg_projector=22_026_240,
                   panoptic_head=20_611_521, vision_projector=12_982_272, neck=10_499_072, llm_projector=852_480)
FULL_TOTAL, FULL_STAGE3_TRAINABLE = 4_624_247_809, 4_592_914_657


def run(repo_root, *args, timeout=120):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return subprocess.run([sys.executable, TOOL, *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _json(out):
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _check_states(r, gpus):
    pt, pf = r['params']['trainable'], r['params']['frozen']
    states = r['model_states']
    assert states['zero2']['bytes'] == 2 * pt + int(18 * pt / gpus) + 2 * pf
    assert states['ddp']['bytes'] == 20 * pt + 2 * pf
    assert states['zero3']['bytes'] == 4 * r['params']['largest_layer'] + int(18 * pt / gpus) + -(-2 * pf // gpus)


def test_tiny_stage3(repo_root, shapes_root, tiny_tokenizer_dir, tmp_path):
    out_file = tmp_path / 'plan.json'
    r = _json(run(repo_root, 'configs/xsam/tiny_mixed.py', '--gpus', '2', '--micro-batch', '3', '--tokenizer',
                  tiny_tokenizer_dir, '--data-root', shapes_root, '--samples-per-task', '2', '--json', '--out',
                  str(out_file)))
    assert json.loads(out_file.read_text()) == r
    p = r['params']
    assert p['total'] == sum(m['total'] for m in p['modules'].values()) and 0 < p['trainable'] < p['total']
    assert set(p['modules']) == set(FULL_PARAMS)
    _check_states(r, 2)
    # tiny: SigLIP 32 px / patch 8 = 16 tokens; SAM 128 px / patch 8 = 16 x 16 -> pixel shuffle 0.5 -> 64
    assert r['visual_tokens'] == dict(total=80, image_encoder=16, sam=64)
    assert set(r['tasks']) == {'imgconv', 'genseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg'}
    for task, t in r['tasks'].items():
        assert t['text_source'].startswith('data') and 0 < t['text_mean'] <= t['text_tokens'] <= r['text_budget']
        assert t['seq_len'] == t['text_tokens'] + 80 * t['images'] + t['regions']
        a = t['activations']
        assert a['none']['bytes'] == a['config']['bytes'] > 0  # nothing checkpointed in the tiny config
        assert a['full']['checkpointed'] == ['llm', 'vision_encoder', 'backbone']
        assert 0 < a['full']['bytes'] < a['none']['bytes']
        assert set(a['none']['by_component']) == {'encoders', 'llm', 'llm_projector', 'decoder'}
        for k in ('ddp', 'zero2', 'zero3'):
            assert t['per_gpu'][k] == r['model_states'][k]['bytes'] + 3 * a['config']['bytes']
    assert r['tasks']['vgdseg']['regions'] > 0 and r['tasks']['imgconv']['regions'] == 0
    # activations grow with the sequence: the LLM part of the longest task exceeds the shortest's
    llm = {k: t['activations']['none']['by_component']['llm'] for k, t in r['tasks'].items()}
    seq = {k: t['seq_len'] for k, t in r['tasks'].items()}
    assert llm[max(seq, key=seq.get)] > llm[min(seq, key=seq.get)]


def test_tiny_stage2_table_and_seq_len(repo_root, tiny_tokenizer_dir):
    out = run(repo_root, 'configs/xsam/tiny_align_pretrain.py', '--tokenizer', tiny_tokenizer_dir, '--gpus', '4',
              '--seq-len', '100', 'refseg=40')
    assert out.returncode == 0, out.stderr[-3000:]
    assert '| module | parameters | trainable |' in out.stdout and '| ZeRO-2 |' in out.stdout
    rows = {line.split('|')[1].strip(): line for line in out.stdout.splitlines() if line.startswith('| ')}
    assert 'imgconv' in rows and 'refseg' in rows and 'genseg' not in rows
    cells = [c.strip() for c in rows['refseg'].split('|')[1:-1]]
    assert cells[1:4] == ['40', 'given', str(40 + 80)]
    r = _json(run(repo_root, 'configs/xsam/tiny_align_pretrain.py', '--tokenizer', tiny_tokenizer_dir, '--gpus', '4',
                  '--seq-len', '100', '--json', '--cfg-options', 'model.llm.gradient_checkpointing=True'))
    assert r['checkpointing']['llm'] is True  # switched on, but the frozen LLM runs in eval mode: inactive
    assert any('inactive' in n and 'llm' in n for n in r['notes'])
    assert r['tasks']['imgconv']['activations']['config']['checkpointed'] == []
    m = r['params']['modules']
    assert r['params']['trainable'] == m['vision_projector']['total'] + m['seg_projector']['total']
    assert {k for k, v in m.items() if v['trainable']} == {'vision_projector', 'seg_projector'}
    _check_states(r, 4)
    assert r['tasks']['imgconv']['seq_len'] == 180


def test_full_size_stage3_on_meta(repo_root):
    r = _json(run(repo_root, 'configs/xsam/mixed.py', '--skip-activations', '--json', timeout=300))
    assert {k: v['total'] for k, v in r['params']['modules'].items()} == FULL_PARAMS
    assert r['params']['total'] == FULL_TOTAL and r['params']['trainable'] == FULL_STAGE3_TRAINABLE
    assert r['settings']['config_zero_stage'] == 2 and r['settings']['micro_batch'] == 4
    assert r['params']['largest_layer'] == 32014 * 3072  # Phi-3's resized embedding (and LM head)
    _check_states(r, 16)
    assert 13 * 2**30 < r['model_states']['zero2']['bytes'] < 14 * 2**30
    assert any('stood in' in n for n in r['notes'])


def test_bad_arguments_are_named(repo_root):
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--cfg-options', 'model.llm.no_such_key=1')
    assert out.returncode == 2 and "unknown config key 'model.llm.no_such_key'" in out.stderr
    assert "model.llm (HFCausalLM) has no key 'no_such_key'" in out.stderr
    assert 'Traceback' not in out.stderr
    out = run(repo_root, 'configs/xsam/tiny_mixed.py', '--seq-len', 'segment=3')
    assert out.returncode == 2 and "unknown task 'segment'" in out.stderr
    out = run(repo_root, 'configs/xsam/no_such_config.py')
    assert out.returncode == 2 and 'config file not found' in out.stderr
