import pytest
from transformers import AutoTokenizer

from mmxsam.models.language import (EXTRA_CORPUS, IGNORE_INDEX, IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX,
                                    add_xsam_tokens, build_tiny_tokenizer, encode_conversation,
                                    get_chat_template)

CORPUS = ['the small red circle on the left', 'a blue square', 'What is in this image?',
          'How many shapes are there?', 'There are three shapes.'] + list(EXTRA_CORPUS)

Q1 = '<image>\nWhat is in this image?'
A1 = 'The image shows a person, a dog, a cat, a car and a tree.'
Q2 = 'Can you segment <p>the small red circle on the left</p> in this image?'
A2 = 'Sure, it is <SEG>.'


@pytest.fixture(scope='module')
def tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('conv_tok')
    build_tiny_tokenizer(CORPUS, str(out), vocab_size=600)
    return str(out)


@pytest.fixture(scope='module')
def tok(tok_dir):
    t = AutoTokenizer.from_pretrained(tok_dir)
    add_xsam_tokens(t)
    return t


def enc(tok, text):
    return tok.encode(text, add_special_tokens=False)


def supervised_spans(ids, labels):
    """Contiguous runs of supervised ids."""
    spans, cur = [], []
    for i, l in zip(ids, labels):
        if l == IGNORE_INDEX:
            if cur:
                spans.append(cur)
            cur = []
        else:
            assert l == i
            cur.append(i)
    if cur:
        spans.append(cur)
    return spans


def test_two_turn_masking_token_by_token(tok):
    out = encode_conversation(tok, 'phi3', [(Q1, A1), (Q2, A2)])
    M = IGNORE_INDEX
    exp_ids, exp_labels = [], []

    def add(ids, supervised):
        exp_ids.extend(ids)
        exp_labels.extend(ids if supervised else [M] * len(ids))

    add([tok.bos_token_id], False)  # BOS only at the very start
    add(enc(tok, '<|user|>\n'), False)
    add([IMAGE_TOKEN_INDEX], False)
    add(enc(tok, '\nWhat is in this image?<|end|>\n<|assistant|>\n'), False)
    add(enc(tok, A1 + '<|end|>'), True)
    add(enc(tok, '\n'), False)  # separator: not supervised
    add(enc(tok, '<|user|>\n' + Q2 + '<|end|>\n<|assistant|>\n'), False)
    add(enc(tok, A2 + '<|end|>'), True)
    add(enc(tok, '\n'), False)
    assert out['input_ids'] == exp_ids
    assert out['labels'] == exp_labels
    assert out['num_truncated'] == 0
    assert exp_ids.count(tok.bos_token_id) == 1
    spans = supervised_spans(out['input_ids'], out['labels'])
    assert [tok.decode(s) for s in spans] == [A1 + '<|end|>', A2 + '<|end|>']
    # the ids are the rendered template (placeholder restored) tokenized
    text = tok.decode([t if t >= 0 else tok.unk_token_id for t in out['input_ids']])
    assert text == '<s>' + get_chat_template('phi3').render([(Q1, A1), (Q2, A2)]).replace('<image>', '<unk>')
    # X-SAM's tokens are single ids
    seg = tok.convert_tokens_to_ids('<SEG>')
    assert out['input_ids'].count(seg) == 1 and out['labels'].count(seg) == 1


def test_placeholders(tok):
    q = '<image>\nSegment <p><region></p>, <p><region></p>.'
    out = encode_conversation(tok, 'phi3', [(q, 'Sure, <SEG>.')])
    ids, labels = out['input_ids'], out['labels']
    assert ids.count(IMAGE_TOKEN_INDEX) == 1 and ids.count(REGION_TOKEN_INDEX) == 2
    for i, l in zip(ids, labels):
        if i < 0:
            assert l == IGNORE_INDEX
    p0, p1 = tok.convert_tokens_to_ids(['<p>', '</p>'])
    r = ids.index(REGION_TOKEN_INDEX)
    assert ids[r - 1:r + 2] == [p0, REGION_TOKEN_INDEX, p1]
    assert all(l >= 0 or l == IGNORE_INDEX for l in labels)
    # the placeholder strings never reach the tokenizer
    assert tok.unk_token_id not in ids
    with pytest.raises(ValueError, match='placeholder'):
        encode_conversation(tok, 'phi3', [('q', 'see <image>')])


def test_generation_prompt_and_system(tok):
    out = encode_conversation(tok, 'phi3', [(Q1, A1), ('How many shapes are there?', None)],
                              system='You are a helpful assistant.')
    assert out['input_ids'][-len(enc(tok, '<|assistant|>\n')):] == enc(tok, '<|assistant|>\n')
    spans = supervised_spans(out['input_ids'], out['labels'])
    assert [tok.decode(s) for s in spans] == [A1 + '<|end|>']
    text = tok.decode([t for t in out['input_ids'][1:] if t >= 0])
    assert text.startswith('<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\n')


def test_other_templates(tok):
    out = encode_conversation(tok, 'qwen', [('q', 'a')])
    assert out['input_ids'][0] != tok.bos_token_id  # qwen: no BOS
    assert tok.decode(out['input_ids']) == '<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n'
    assert [tok.decode(s) for s in supervised_spans(out['input_ids'], out['labels'])] == ['a<|im_end|>']
    out = encode_conversation(tok, dict(name='t', user='U:{input}\n', assistant='A:', suffix='#'),
                              [('q', 'a'), ('r', 'b')])
    assert tok.decode(out['input_ids']) == '<s>U:q\nA:a#U:r\nA:b#'
    assert [tok.decode(s) for s in supervised_spans(out['input_ids'], out['labels'])] == ['a#', 'b#']


def test_truncation_drops_question_text_only(tok):
    long_q = '<image>\nCan you segment the image based on the following categories: ' \
             '<p>the small red circle on the left</p>? Please output the segmentation masks.'
    turns = [(long_q, A2), ('How many shapes are there?', 'There are three shapes.')]
    full = encode_conversation(tok, 'phi3', turns)
    n = len(full['input_ids'])
    out = encode_conversation(tok, 'phi3', turns, max_length=n - 5)
    assert len(out['input_ids']) == len(out['labels']) == n - 5 and out['num_truncated'] == 5
    ids, labels = out['input_ids'], out['labels']
    # answers, phrase, <SEG>, placeholder untouched
    assert supervised_spans(ids, labels) == supervised_spans(full['input_ids'], full['labels'])
    assert ids.count(IMAGE_TOKEN_INDEX) == 1
    assert '<p>the small red circle on the left</p>' in tok.decode([t for t in ids if t >= 0])
    # dropped from the end of the first question: "... Please output the segmentation masks."
    text = tok.decode([t for t in ids if t >= 0])
    assert 'How many shapes are there?' in text  # second question intact
    assert '<|end|>\n<|assistant|>\n' in text and text.count('<|user|>') == 2
    # 5 tokens were removed from a contiguous stretch that ends right before the turn's <|end|>
    end_id = tok.convert_tokens_to_ids('<|end|>')
    k = full['input_ids'].index(end_id)  # first <|end|>: end of question 1
    assert full['input_ids'][:k - 5] + full['input_ids'][k:] == ids


def test_truncation_spills_to_later_turns_and_raises(tok):
    turns = [('<image>\nab', 'x'), ('What is in this image? How many shapes are there?', 'y')]
    full = encode_conversation(tok, 'phi3', turns)
    n_q1 = len(enc(tok, 'ab'))
    out = encode_conversation(tok, 'phi3', turns, max_length=len(full['input_ids']) - n_q1 - 2)
    assert out['num_truncated'] == n_q1 + 2
    text = tok.decode([t for t in out['input_ids'] if t >= 0])
    assert '\nab' not in text and 'How many shapes are' in text and 'there?' not in text
    with pytest.raises(ValueError, match=r'conversation has \d+ tokens but max_length=5'):
        encode_conversation(tok, 'phi3', turns, max_length=5)
    # only phrase text in the question: nothing can be dropped
    with pytest.raises(ValueError, match='at most 0 question tokens'):
        encode_conversation(tok, 'phi3', [('<p>a blue square</p>', '<SEG>')], max_length=4)


def test_slow_tokenizer_path(tok):
    class Slow:  # a tokenizer without offsets: runs are tokenized one by one
        is_fast = False
        bos_token_id = tok.bos_token_id

        def encode(self, text, add_special_tokens=False):
            return tok.encode(text, add_special_tokens=add_special_tokens)

    turns = [(Q1, A1), (Q2, A2)]
    assert encode_conversation(Slow(), 'phi3', turns) == encode_conversation(tok, 'phi3', turns)


def test_errors(tok_dir, tok):
    plain = AutoTokenizer.from_pretrained(tok_dir)  # no X-SAM tokens
    with pytest.raises(ValueError, match="'<SEG>' is not a single token"):
        encode_conversation(plain, 'phi3', [('q', 'Sure, <SEG>.')])
    with pytest.raises(ValueError, match='max_length'):
        encode_conversation(tok, 'phi3', [('q', 'a')], max_length=0)
    with pytest.raises(ValueError, match='non-empty list'):
        encode_conversation(tok, 'phi3', [])
