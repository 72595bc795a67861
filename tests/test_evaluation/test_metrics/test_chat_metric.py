"""ChatMetric: normalisation, accuracy per question type, VLMEvalKit export, 1 vs 2 processes."""
import csv
import math
from functools import partial
from unittest import mock

import numpy as np
import pytest
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator

from mmxsam.evaluation.metrics.chat_metric import (EXPORT_COLUMNS, ChatMetric, classify_question, last_turns,
                                                   normalize_answer)

from dist_helpers import run_distributed  # noqa: E402  (the shared 2-process scaffolding, beside this file)

LOG_TARGET = 'mmxsam.evaluation.metrics.chat_metric.print_log'


def conv(*pairs):
    turns = []
    for k, (q, a) in enumerate(pairs):
        turns.append({'from': 'human', 'value': f'<image>\n{q}' if k == 0 else q})
        if a is not None:
            turns.append({'from': 'gpt', 'value': a})
    return turns


def make_sample(sample_idx, conversations, pred_text, as_dict=True, **meta):
    ds = DetDataSample(metainfo=dict(sample_idx=sample_idx, conversations=conversations,
                                     img_path=f'images/{sample_idx}.png', source='shapes_chat', **meta))
    if pred_text is not None:
        ds.pred_text = pred_text
    return ds.to_dict() if as_dict else ds


# 8 hand-made samples: (conversation, prediction, correct?)
HAND = [
    (conv(('How many shapes are there in the image?', 'There are three shapes.')), 'there are 3 shapes', True),
    (conv(('What is in the background of the image?', 'The background shows grass.'),
          ('How many circles are there in the image?', 'There are no circles.')), 'There are zero circles.', True),
    (conv(('How many squares are there in the image?', 'There is one square.')), 'There are two squares.', False),
    (conv(('What colour is the triangle?', 'The triangle is red.')), 'The triangle is red.<|end|>', True),
    (conv(('What colour is the circle?', 'The circle is blue.')), 'The circle is green.', False),
    (conv(('Is there a red square in the image?', 'No.')), ' no ', True),
    (conv(('Is there a blue circle in the image?', 'Yes.')), None, False),  # no pred_text: wrong
    (conv(('What is in the background of the image?', 'The background shows sky and grass.')),
     "The background shows sky, and grass!", True),
]


def hand_samples(as_dict=True):
    return [make_sample(i, c, p, as_dict=as_dict) for i, (c, p, _) in enumerate(HAND)]


def run_metric(metric, samples, batch_size=3):
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric.compute_metrics(metric.results)


# ----------------------------------------------------------------------------------------------------
def test_normalize_answer():
    assert normalize_answer('There are THREE shapes.') == 'there are 3 shapes'
    assert normalize_answer('There are no circles.') == normalize_answer('there are 0 circles') == 'there are 0 circles'
    assert normalize_answer('No.') == 'no' and normalize_answer('Yes!') == 'yes'
    assert normalize_answer("It isn't twelve<|end|>") == 'it isnt 12'
    assert normalize_answer('  a\tb_c  ') == 'a b c'
    assert normalize_answer('three', numbers_to_digits=False) == 'three'
    assert normalize_answer(None) == ''


def test_classify_question_and_last_turns():
    assert classify_question('<image>\nHow many circles are there in the image?') == 'counting'
    assert classify_question('How many corners does a square have?') == 'counting'
    assert classify_question('What colour is the circle?') == 'colour'
    assert classify_question('What is in the background of the image?') == 'background'
    assert classify_question('<image>\nIs there a red square in the image?') == 'yes_no'
    assert classify_question('Describe the image.') == 'other'
    assert last_turns(HAND[1][0]) == ('How many circles are there in the image?', 'There are no circles.')
    assert last_turns(conv(('Q1', 'A1'), ('Q2', None))) == ('Q2', None)
    assert last_turns(None) == (None, None)


def test_hand_made_accuracy_per_type():
    with mock.patch(LOG_TARGET) as log:
        metrics = run_metric(ChatMetric(), hand_samples())
    correct = [c for _, _, c in HAND]
    assert metrics['accuracy'] == pytest.approx(100.0 * sum(correct) / len(correct))
    assert metrics['counting/accuracy'] == pytest.approx(100 * 2 / 3)
    assert metrics['colour/accuracy'] == pytest.approx(50.0)
    assert metrics['yes_no/accuracy'] == pytest.approx(50.0)
    assert metrics['background/accuracy'] == pytest.approx(100.0)
    assert list(metrics) == ['accuracy', 'background/accuracy', 'colour/accuracy', 'counting/accuracy',
                             'yes_no/accuracy']
    messages = ' '.join(str(c.args[0]) for c in log.call_args_list)
    assert '1 sample(s) without pred_text scored as wrong' in messages


def test_explicit_keys_and_samples_without_answer():
    samples = [
        make_sample(0, conv(('Q?', None)), 'Paris', gt_answer='paris', question_type='capital'),
        make_sample(1, conv(('Describe.', None)), 'something'),  # no answer: out of the accuracy
    ]
    metric = ChatMetric()
    metrics = run_metric(metric, samples)
    assert metrics == {'accuracy': 100.0, 'capital/accuracy': 100.0}
    with mock.patch(LOG_TARGET) as log:
        metrics = ChatMetric().compute_metrics([dict(metric.results[1])])
    assert list(metrics) == ['accuracy'] and math.isnan(metrics['accuracy'])
    assert 'no results with a ground-truth answer' in log.call_args.args[0]
    assert math.isnan(ChatMetric().compute_metrics([])['accuracy'])


def test_duplicates_dropped():
    clean = run_metric(ChatMetric(), hand_samples())
    with mock.patch('mmxsam.evaluation.metrics.metric_utils.print_log') as log:  # the shared helper logs
        padded = run_metric(ChatMetric(), hand_samples() + hand_samples()[:2])
    assert padded == clean
    assert 'dropped 2 repeated result(s)' in ' '.join(str(c.args[0]) for c in log.call_args_list)


def read_tsv(path):
    with open(path, encoding='utf-8', newline='') as f:
        return list(csv.reader(f, delimiter='\t'))


def test_export_tsv_layout(tmp_path):
    path = tmp_path / 'out' / 'xsam_ShapesChat.tsv'
    samples = hand_samples()
    samples[3]['pred_text'] = 'multi\nline\t"quoted"'
    run_metric(ChatMetric(export_file=str(path)), samples[::-1])  # order of arrival does not matter
    rows = read_tsv(path)
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert [r[0] for r in rows[1:]] == [str(i) for i in range(len(HAND))]
    assert rows[1][1:5] == ['How many shapes are there in the image?', 'There are three shapes.', 'there are 3 shapes',
                            'counting']
    assert rows[4][3] == 'multi\nline\t"quoted"'
    assert rows[7][3] == ''  # no prediction
    assert rows[1][5:] == ['images/0.png', 'shapes_chat']
    with open(path, encoding='utf-8') as f:
        assert f.readline().startswith('"index"\t"question"')  # QUOTE_ALL, as VLMEvalKit's dump_tsv


def test_export_xlsx_falls_back_to_tsv_without_openpyxl(tmp_path):
    path = tmp_path / 'pred.xlsx'
    metric = ChatMetric(export_file=str(path))
    with mock.patch.dict('sys.modules', {'openpyxl': None}), mock.patch(LOG_TARGET) as log:
        run_metric(metric, hand_samples())
    assert not path.exists() and (tmp_path / 'pred.tsv').exists()
    assert 'openpyxl is not installed' in ' '.join(str(c.args[0]) for c in log.call_args_list)
    with pytest.raises(ValueError, match='export_file'):
        ChatMetric(export_file='pred.json')


def test_missing_sample_idx_and_registry():
    sample = hand_samples()[0]
    del sample['sample_idx']
    with pytest.raises(KeyError, match='sample_idx'):
        ChatMetric().process({}, [sample])
    metric = METRICS.build(dict(type='ChatMetric'))
    evaluator = Evaluator(metric)
    evaluator.process(hand_samples(as_dict=False))
    metrics = evaluator.evaluate(len(HAND))
    assert metrics['chat/accuracy'] == pytest.approx(100 * 5 / 8)


def test_synthetic_conversations_score_100_with_perfect_answers(shapes_root):
    from mmxsam.datasets import XSAMImageConvDataset
    ds = XSAMImageConvDataset(data_root=shapes_root, ann_file='llava/conversations_val.json',
                              data_prefix=dict(img_path='images'), test_mode=True)
    samples = []
    for i in range(len(ds)):
        info = ds.prepare_data(i)
        answer = last_turns(info['conversations'])[1]
        samples.append(make_sample(i, info['conversations'], answer.upper() + ' '))
    metrics = run_metric(ChatMetric(), samples)
    assert metrics['accuracy'] == 100.0 and len(metrics) > 2


# ----------------------------------------------------------------------------------------------------
# 1 vs 2 processes
# ----------------------------------------------------------------------------------------------------
NUM_DIST = len(HAND) + 1  # 9: rank 1 pads with a repeat of sample 0


def dist_samples():
    extra = (conv(('How many triangles are there in the image?', 'There are two triangles.')), '2 triangles', False)
    return [make_sample(i, c, p, as_dict=False) for i, (c, p, _) in enumerate(HAND + [extra])]


def _evaluate(indices, collect_dir, export_file):
    samples = dist_samples()
    evaluator = Evaluator(ChatMetric(collect_dir=collect_dir, export_file=export_file))
    for start in range(0, len(indices), 2):
        evaluator.process([samples[i] for i in indices[start:start + 2]])
    return evaluator.evaluate(NUM_DIST)


def test_one_and_two_processes_give_identical_metrics_and_file(tmp_path):
    single = _evaluate(list(range(NUM_DIST)), None, str(tmp_path / 'single.tsv'))
    parts = run_distributed(partial(_evaluate, export_file=str(tmp_path / 'dist.tsv')), NUM_DIST, tmp_path)
    assert parts[1]['indices'][-1] == 0
    assert parts[0]['metrics'] == single and parts[1]['metrics'] == single
    assert single['chat/accuracy'] == pytest.approx(100 * 5 / 9)
    assert (tmp_path / 'single.tsv').read_bytes() == (tmp_path / 'dist.tsv').read_bytes()
    assert len(read_tsv(tmp_path / 'single.tsv')) == NUM_DIST + 1
    assert np.isfinite(single['chat/counting/accuracy'])


def test_packed_samples_carry_the_conversation(shapes_root, tiny_tokenizer_dir):
    """Data set -> PackXSAMInputs keeps ``conversations`` in the metainfo: the metric finds Q and A."""
    from mmengine.registry import init_default_scope

    from mmxsam.datasets import XSAMImageConvDataset
    init_default_scope('mmdet')
    pipeline = [dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tiny_tokenizer_dir), max_length=256)]
    ds = XSAMImageConvDataset(data_root=shapes_root, ann_file='llava/conversations_val.json',
                              data_prefix=dict(img_path='images'), test_mode=True, pipeline=pipeline)
    samples = []
    for i in range(3):
        sample = ds[i]['data_samples']
        question, answer = last_turns(sample.metainfo['conversations'])
        assert question and answer
        sample.pred_text = answer if i else 'wrong'
        samples.append(sample)
    evaluator = Evaluator(ChatMetric())
    evaluator.process(samples)
    assert evaluator.evaluate(3)['chat/accuracy'] == pytest.approx(200 / 3)
