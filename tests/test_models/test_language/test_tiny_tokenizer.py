import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

import mmxsam
from mmxsam.models.language import EXTRA_CORPUS, build_tiny_tokenizer, iter_json_strings
from mmxsam.models.language import tiny_tokenizer as tt

REPO_ROOT = Path(__file__).resolve().parents[3]
TOOL = REPO_ROOT / 'tools' / 'misc' / 'build_tiny_tokenizer.py'

CORPUS = [
    'a person riding a horse on the beach',
    'two dogs playing with a red ball in the park',
    'the cat is sitting on the sofa next to a lamp',
    'person', 'horse', 'dog', 'cat', 'car', 'tree', 'sky', 'grass', 'building',
    'the man on the left wearing a blue shirt',
] + list(EXTRA_CORPUS)

SPECIALS = ['<unk>', '<s>', '<|endoftext|>', '<|user|>', '<|assistant|>', '<|system|>', '<|end|>']


@pytest.fixture(scope='module')
def tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('tiny_tok')
    build_tiny_tokenizer(CORPUS, str(out), vocab_size=512)
    return out


@pytest.fixture(scope='module')
def tok(tok_dir):
    return AutoTokenizer.from_pretrained(str(tok_dir))


def test_autotokenizer_loads(tok_dir, tok):
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert tok.padding_side == 'right'
    assert tok.model_max_length == 2048
    assert tok.bos_token == '<s>'
    assert tok.eos_token == '<|endoftext|>'
    assert tok.pad_token == '<|endoftext|>'
    assert tok.unk_token == '<unk>'
    assert tok.convert_tokens_to_ids(SPECIALS) == list(range(len(SPECIALS)))
    vocab = json.loads((tok_dir / 'tokenizer.json').read_text(encoding='utf-8'))['model']['vocab']
    assert len(tok) == len(vocab)
    assert 256 + len(SPECIALS) < len(tok) <= 512
    # X-SAM's own tokens are added later by the LLM wrapper, exactly as for the real tokenizer.
    for t in ['<SEG>', '<p>', '</p>', '<image>', '<region>']:
        assert t not in tok.get_vocab()


def test_model_max_length_param(tmp_path):
    t = build_tiny_tokenizer(CORPUS, str(tmp_path), vocab_size=300, model_max_length=77)
    assert t.model_max_length == 77
    assert AutoTokenizer.from_pretrained(str(tmp_path)).model_max_length == 77


def test_chat_template_matches_phi3(tok):
    msgs = [
        dict(role='system', content='You are a helpful assistant.'),
        dict(role='user', content='Can you segment the dog?'),
        dict(role='assistant', content='Sure, it is the mask.'),
        dict(role='user', content='And the cat?'),
    ]
    expected = ('<|system|>\nYou are a helpful assistant.<|end|>\n'
                '<|user|>\nCan you segment the dog?<|end|>\n'
                '<|assistant|>\nSure, it is the mask.<|end|>\n'
                '<|user|>\nAnd the cat?<|end|>\n')
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == expected + '<|assistant|>\n'
    # Phi-3-mini's template ends a conversation without a generation prompt with eos_token.
    assert tok.apply_chat_template(msgs, tokenize=False) == expected + '<|endoftext|>'
    assert tok.chat_template == tt.PHI3_CHAT_TEMPLATE


def test_special_tokens_atomic(tok):
    for i, t in enumerate(SPECIALS):
        assert tok.encode(t, add_special_tokens=False) == [i]
    text = '<|user|>\nhello<|end|>\n<|assistant|>\nworld<|end|>\n<|endoftext|>'
    ids = tok.encode(text, add_special_tokens=False)
    for t in ['<|user|>', '<|end|>', '<|assistant|>', '<|endoftext|>']:
        assert tok.convert_tokens_to_ids(t) in ids
    assert ids.count(tok.convert_tokens_to_ids('<|end|>')) == 2
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=True) == '\nhello\n\nworld\n'
    # like Phi-3-mini (add_bos_token=False), tokenizer(text) adds no bos/eos
    enc = tok('hello')
    assert enc['input_ids'] == tok.encode('hello', add_special_tokens=False)
    assert sorted(enc.keys()) == ['attention_mask', 'input_ids']  # no token_type_ids, as Phi-3


def test_added_tokens_like_real_tokenizer(tok_dir):
    """What the LLM wrapper does to any tokenizer: add X-SAM's tokens, then resize embeddings."""
    t = AutoTokenizer.from_pretrained(str(tok_dir))
    n = len(t)
    t.add_tokens(['<SEG>', '<p>', '</p>'], special_tokens=True)
    assert len(t) == n + 3
    ids = t.encode('<p>dog</p> <SEG>', add_special_tokens=False)
    assert ids[0] == n + 1 and ids[-1] == n and n + 2 in ids


@pytest.mark.parametrize('text', [
    'zebra ünïcödé 123',
    '  leading spaces, tabs\tand\nnewlines\n',
    '日本語のテキスト 🦓🐕 emoji',
    'a person riding a horse',
    '',
])
def test_round_trip(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text


def test_deterministic(tmp_path):
    shuffled = list(CORPUS)
    random.Random(0).shuffle(shuffled)
    build_tiny_tokenizer(CORPUS, str(tmp_path / 'a'), vocab_size=400)
    build_tiny_tokenizer(shuffled, str(tmp_path / 'b'), vocab_size=400)
    a = json.loads((tmp_path / 'a' / 'tokenizer.json').read_text(encoding='utf-8'))
    b = json.loads((tmp_path / 'b' / 'tokenizer.json').read_text(encoding='utf-8'))
    assert a['model']['vocab'] == b['model']['vocab']
    assert a['model']['merges'] == b['model']['merges']
    assert a == b


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='vocab_size'):
        build_tiny_tokenizer(CORPUS, str(tmp_path), vocab_size=299)
    with pytest.raises(ValueError, match='min_frequency'):
        build_tiny_tokenizer(CORPUS, str(tmp_path), min_frequency=0)
    with pytest.raises(ValueError, match='empty'):
        build_tiny_tokenizer([], str(tmp_path))
    with pytest.raises(TypeError):
        build_tiny_tokenizer('not a list', str(tmp_path))
    with pytest.raises(TypeError):
        build_tiny_tokenizer(['ok', 3], str(tmp_path))


def test_iter_json_strings(tmp_path):
    rle = 'a' * 30 + 'Zb3' * 20  # 90 chars, no whitespace
    data = {
        'images': [{'file_name': 'img_0001.jpg', 'height': 32, 'width': 32, 'id': 1}],
        'annotations': [{
            'segmentation': {'size': [32, 32], 'counts': rle},
            'caption': 'a dog on the grass',
            'nested': {'deeper': [['red ball', 7, None, True], {'x': 'sky'}]},
            'mask_file': 'masks/0001.PNG',
            'meta': 'ann.json',
            'blank': '   ',
        }],
        'categories': [{'name': 'dog'}, {'name': 'traffic light'}],
    }
    p1 = tmp_path / 'a.json'
    p1.write_text(json.dumps(data), encoding='utf-8')
    p2 = tmp_path / 'b.json'
    p2.write_text(json.dumps(['ünïcödé text', 'x' * 64, 'y' * 65, 'spaced ' + 'z' * 80]), encoding='utf-8')
    got = list(iter_json_strings([str(p1), str(p2)]))
    assert got == ['a dog on the grass', 'red ball', 'sky', 'dog', 'traffic light',
                   'ünïcödé text', 'x' * 64, 'spaced ' + 'z' * 80]
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json', encoding='utf-8')
    with pytest.raises(ValueError, match='bad.json'):
        list(iter_json_strings([str(bad)]))


def _run_tool(*args):
    env = dict(os.environ)
    pkg_parent = str(Path(mmxsam.__file__).resolve().parents[1])
    env['PYTHONPATH'] = os.pathsep.join([pkg_parent] + [p for p in [env.get('PYTHONPATH')] if p])
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow  # the subprocess imports mmxsam (torch, mmdet): ~5 s of the file's ~9 s
def test_cli(tmp_path):
    root = tmp_path / 'data'
    (root / 'annotations' / 'sub').mkdir(parents=True)
    (root / 'annotations' / 'train.json').write_text(json.dumps(
        {'images': [{'file_name': '0.jpg'}], 'annotations': [{'caption': 'a zebra next to a giraffe'}]}),
        encoding='utf-8')
    (root / 'annotations' / 'sub' / 'val.json').write_text(json.dumps(
        [{'sentence': 'the left zebra'}, {'category': 'giraffe'}]), encoding='utf-8')
    out = tmp_path / 'tok'
    res = _run_tool(root, '--out', out, '--vocab-size', 400)
    assert res.returncode == 0, res.stderr
    assert 'from 2 JSON files' in res.stdout
    loaded = AutoTokenizer.from_pretrained(str(out))
    assert f'vocab size: {len(loaded)}' in res.stdout
    assert str(out.resolve()) in res.stdout
    assert loaded.encode('<|end|>', add_special_tokens=False) == [6]
    assert loaded.decode(loaded.encode('the left zebra')) == 'the left zebra'
    # deterministic across processes too: the same corpus built here gives the same file
    files = sorted(str(p) for p in root.rglob('*.json'))
    build_tiny_tokenizer(list(iter_json_strings(files)) + list(EXTRA_CORPUS), str(tmp_path / 'here'), vocab_size=400)
    assert (tmp_path / 'here' / 'tokenizer.json').read_text(encoding='utf-8') == \
        (out / 'tokenizer.json').read_text(encoding='utf-8')


def test_cli_errors(tmp_path):
    res = _run_tool(tmp_path / 'missing', '--out', tmp_path / 'tok')
    assert res.returncode != 0
    assert 'does not exist' in res.stderr and 'missing' in res.stderr
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('hi')
    res = _run_tool(tmp_path / 'empty', '--out', tmp_path / 'tok')
    assert res.returncode != 0
    assert 'no *.json file found' in res.stderr
    res = _run_tool(tmp_path / 'empty', '--out', tmp_path / 'tok', '--vocab-size', 100)
    assert res.returncode != 0
    assert '--vocab-size' in res.stderr
    assert not (tmp_path / 'tok').exists()


def test_cli_min_vocab_size_in_sync():
    spec = importlib.util.spec_from_file_location('build_tiny_tokenizer_tool', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.MIN_VOCAB_SIZE == tt.MIN_VOCAB_SIZE
