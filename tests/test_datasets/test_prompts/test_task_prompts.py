"""Tests of mmxsam.datasets.prompts: X-SAM's templates, how they are drawn and filled, and the formatting helpers."""
import dataclasses
import random

import numpy as np
import pytest

from mmxsam.datasets.prompts import (TASK_PROMPTS, TaskPrompts, build_turns, fill_template, format_phrase,
                                     format_phrases, format_regions, get_task_prompts, list_task_prompts,
                                     register_task_prompts, template_fields, with_image)
from mmxsam.models.language.constants import SEG_TOKEN

# name -> (#questions, question fields, #answers, answer fields), as in the official map functions.
EXPECTED = {
    'genseg': (6, {'categories'}, 5, set()),
    'genseg_caption': (6, {'categories'}, 4, {'caption'}),
    'ovseg': (6, {'categories'}, 5, set()),
    'refseg': (10, {'phrase'}, 5, set()),
    'reaseg_short': (5, {'sent'}, 5, set()),
    'reaseg_long': (5, {'sent'}, 5, set()),
    'reaseg_explain': (5, {'sent'}, 5, {'explanation'}),
    'gcgseg': (6, set(), 4, {'caption'}),
    'vgdseg': (6, {'regions'}, 5, set()),
    'intseg': (6, {'regions'}, 5, set()),
}
FIELDS = dict(categories='<p>cat</p>, <p>dog</p>', phrase='<p>the red circle</p>', sent='<p>what holds water?</p>',
              regions='<p><region></p>', caption='a <p>dog</p> on <p>grass</p>', explanation='Cups hold water.')


@pytest.fixture
def scratch_registry():
    """Restore the registry after a test that registers things."""
    saved = dict(TASK_PROMPTS)
    yield
    TASK_PROMPTS.clear()
    TASK_PROMPTS.update(saved)


# --------------------------------------------------------------------------------------------- built-in templates
def test_registered_names():
    assert list_task_prompts() == sorted(EXPECTED)
    assert 'imgconv' not in TASK_PROMPTS


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_counts_and_fields(name):
    n_q, q_fields, n_a, a_fields = EXPECTED[name]
    tp = get_task_prompts(name)
    assert tp.name == name
    assert len(tp.questions) == n_q and len(tp.answers) == n_a
    assert all(template_fields(q) == q_fields for q in tp.questions)
    assert all(template_fields(a) == a_fields for a in tp.answers)
    assert tp.question_fields == q_fields and tp.answer_fields == a_fields


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_seg_token_once_per_answer_never_in_questions(name):
    tp = get_task_prompts(name)
    assert all(a.count(SEG_TOKEN) == 1 and a.endswith(f'{SEG_TOKEN}.') for a in tp.answers)
    assert not any(SEG_TOKEN in q for q in tp.questions)


def test_first_templates_and_exact_wording():
    first = {name: (get_task_prompts(name).questions[0], get_task_prompts(name).answers[0]) for name in EXPECTED}
    assert first['genseg'] == ('Can you segment the image based on the following categories: {categories}? '
                               'Please output the segmentation masks.', '<SEG>.')
    assert first['refseg'] == ('Please identify and segment the {phrase} in this image.', '<SEG>.')
    assert first['reaseg_short'][0] == 'Can you segment {sent} in this image? Please output the segmentation mask.'
    assert first['reaseg_long'][0] == '{sent} Please output the corresponding segmentation mask.'
    assert first['reaseg_explain'] == (
        '{sent} Please explain why and output the corresponding segmentation mask.', '{explanation} <SEG>.')
    assert first['gcgseg'] == (
        'Could you please give me a brief description of the image? Please respond with interleaved '
        'segmentation masks for the corresponding parts of the answer.', '{caption} <SEG>.')
    assert first['vgdseg'][0] == ('Can you segment the image based on the following regions: {regions}? '
                                  'Please output the corresponding segmentation mask.')
    # Last entries and the differences between lists.
    assert get_task_prompts('genseg').answers[-1] == 'Sure, the segmentation result is <SEG>.'
    assert get_task_prompts('refseg').answers[-1] == 'Sure, the segmentation mask is <SEG>.'
    assert get_task_prompts('reaseg_explain').answers == (
        '{explanation} <SEG>.', '{explanation} It is <SEG>.', '{explanation} And <SEG>.',
        '{explanation} And it is <SEG>.', '{explanation} And the segmentation mask is <SEG>.')
    assert get_task_prompts('gcgseg').answers == (
        '{caption} <SEG>.', '{caption} And <SEG>.', '{caption} The segmentation mask is <SEG>.',
        '{caption} And the segmentation mask is <SEG>.')
    assert get_task_prompts('genseg_caption').answers[1] == '{caption} And it is <SEG>.'
    # Official near-duplicates kept in place.
    ref_q = get_task_prompts('refseg').questions
    assert ref_q[6] == ref_q[9]
    exp_q = get_task_prompts('reaseg_explain').questions
    assert exp_q[1] == exp_q[3]


def test_aliases_share_templates():
    assert get_task_prompts('ovseg').questions == get_task_prompts('genseg').questions
    assert get_task_prompts('ovseg').answers == get_task_prompts('genseg').answers
    assert get_task_prompts('intseg').questions == get_task_prompts('vgdseg').questions
    assert get_task_prompts('intseg').answers == get_task_prompts('vgdseg').answers
    assert get_task_prompts('reaseg_short').answers == get_task_prompts('refseg').answers


# ------------------------------------------------------------------------------------------------------- drawing
@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_eval_picks_first_template_filled(name):
    tp = get_task_prompts(name)
    for _ in range(5):
        q = tp.pick_question(None, **FIELDS)
        a = tp.pick_answer(**FIELDS)
        assert q == fill_template(tp.questions[0], **FIELDS)
        assert a == fill_template(tp.answers[0], **FIELDS)
        assert '{' not in q and '{' not in a


def test_training_picks_vary_and_follow_seed():
    tp = get_task_prompts('refseg')

    def draw():
        return [(tp.pick_question(np.random, phrase='<p>x</p>'), tp.pick_answer(np.random)) for _ in range(60)]

    np.random.seed(7)
    first = draw()
    np.random.seed(7)
    assert draw() == first
    assert len({q for q, _ in first}) > 5 and len({a for _, a in first}) == 5
    np.random.seed(8)
    assert draw() != first


def test_randomstate_and_generator():
    tp = get_task_prompts('genseg')
    a = [tp.pick_answer(np.random.RandomState(3)) for _ in range(3)]
    assert len(set(a)) == 1  # fresh generators with one seed draw the same
    state = np.random.RandomState(0)
    assert len({tp.pick_answer(state) for _ in range(100)}) == 5
    gen = np.random.default_rng(0)
    assert len({tp.pick_answer(gen) for _ in range(100)}) == 5
    assert (tp.pick_answer(np.random.default_rng(1)) == tp.pick_answer(np.random.default_rng(1)))
    with pytest.raises(TypeError, match='rng'):
        tp.pick_answer(random.Random(0))


# ------------------------------------------------------------------------------------------------------- filling
def test_missing_field_names_template_and_field():
    with pytest.raises(KeyError) as err:
        get_task_prompts('genseg').pick_question(phrase='x')
    msg = str(err.value)
    assert "'categories'" in msg and 'genseg questions' in msg and 'Can you segment the image' in msg
    with pytest.raises(KeyError, match='explanation'):
        get_task_prompts('reaseg_explain').pick_answer()


def test_fill_is_safe():
    assert fill_template('{a} {} {0} { a } {{a}} }{', a='X') == 'X {} {0} { a } {X} }{'
    # filled values are not re-scanned, and extra fields are ignored
    assert fill_template('say {a}', a='{b}', b='no', unused=1) == 'say {b}'
    assert template_fields('{a} {} {b1} { c }') == {'a', 'b1'}
    caption = 'a <p>set {of}</p> braces'
    assert get_task_prompts('gcgseg').pick_answer(caption=caption) == caption + ' <SEG>.'


# ----------------------------------------------------------------------------------------------- TaskPrompts / registry
def test_taskprompts_validation_and_frozen():
    tp = TaskPrompts('demo', ['Q {x}', 'R {x}'], ['A.'])
    assert tp.questions == ('Q {x}', 'R {x}') and isinstance(tp.answers, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tp.name = 'other'
    with pytest.raises(ValueError, match='same fields'):
        TaskPrompts('bad', ('Q {x}', 'Q {y}'), ('A',))
    with pytest.raises(ValueError, match='no answers'):
        TaskPrompts('bad', ('Q',), ())
    with pytest.raises(TypeError):
        TaskPrompts('bad', 'Q', ('A',))


def test_register_and_get(scratch_registry):
    tp = TaskPrompts('demo', ('Segment {phrase}.',), ('<SEG>.',))
    assert register_task_prompts(tp) is tp
    assert get_task_prompts('demo') is tp
    with pytest.raises(KeyError, match='already registered'):
        register_task_prompts(TaskPrompts('demo', ('Q',), ('A',)))
    other = TaskPrompts('demo', ('Q',), ('A',))
    register_task_prompts(other, force=True)
    assert get_task_prompts('demo') is other
    with pytest.raises(TypeError):
        register_task_prompts(dict(name='x'))


def test_get_unknown_lists_known():
    with pytest.raises(KeyError) as err:
        get_task_prompts('imgconv')
    assert 'imgconv' in str(err.value) and 'refseg' in str(err.value) and 'vgdseg' in str(err.value)


# ---------------------------------------------------------------------------------------------------- formatting
def test_format_phrases_and_regions():
    assert format_phrase('red circle') == '<p>red circle</p>'
    assert format_phrase(' x ') == '<p> x </p>'  # used as given
    assert format_phrases(['cat', 'dog']) == '<p>cat</p>, <p>dog</p>'
    assert format_phrases(iter(['a', 'b']), sep=' ') == '<p>a</p> <p>b</p>'
    assert format_regions(1) == '<p><region></p>'
    assert format_regions(2) == '<p><region></p>, <p><region></p>'
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError):
            format_regions(bad)
    with pytest.raises(ValueError):
        format_phrases([])


def test_with_image():
    assert with_image('What is it?') == '<image>\nWhat is it?'
    assert with_image('What is it?\n<image>') == '<image>\nWhat is it?'
    assert with_image(with_image('Q')) == '<image>\nQ'


def test_build_turns():
    turns = build_turns([('Q1', 'A1'), ('Q2', 'A2')])
    assert turns == [{'from': 'human', 'value': '<image>\nQ1'}, {'from': 'gpt', 'value': 'A1'},
                     {'from': 'human', 'value': 'Q2'}, {'from': 'gpt', 'value': 'A2'}]
    assert build_turns([('Q', '')], has_image=False) == [{'from': 'human', 'value': 'Q'},
                                                         {'from': 'gpt', 'value': ''}]
    with pytest.raises(ValueError):
        build_turns([])
    with pytest.raises(ValueError):
        build_turns([('only question',)])


def test_end_to_end_refseg_conversation():
    tp = get_task_prompts('refseg')
    sents = ['The Red Circle', 'small square']
    pairs = [(tp.pick_question(None, phrase=format_phrase(s.lower())), tp.pick_answer(None)) for s in sents]
    turns = build_turns(pairs)
    assert turns[0]['value'] == '<image>\nPlease identify and segment the <p>the red circle</p> in this image.'
    assert turns[2]['value'] == 'Please identify and segment the <p>small square</p> in this image.'
    assert [t['value'] for t in turns[1::2]] == ['<SEG>.', '<SEG>.']
