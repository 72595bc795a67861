"""XSAMReasonSegDataset: LISA labelme JSONs -> multi-turn training samples / one-query evaluation samples."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

from mmxsam.datasets import XSAMReasonSegDataset
from mmxsam.datasets.prompts import (REASEG_ANSWERS, REASEG_EXPLAIN_ANSWERS, REASEG_EXPLAIN_QUESTIONS,
                                     REASEG_LONG_QUESTIONS, REASEG_SHORT_QUESTIONS, format_phrase)
from mmxsam.datasets.utils import decode_mask

H, W = 20, 30
EXPLANATION = 'A cup is made to hold water.'


def _rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _shape(label, points, shape_type='polygon'):
    return dict(label=label, points=points, group_id=None, shape_type=shape_type, flags={})


def _labelme(text, shapes, is_sentence, image_path, h=H, w=W):
    return dict(version='5.0.1', flags={}, shapes=shapes, imagePath=image_path, imageData=None, imageHeight=h,
                imageWidth=w, text=text, is_sentence=is_sentence)


def _write(folder, stem, record, ext='.jpg', h=H, w=W):
    os.makedirs(folder, exist_ok=True)
    if ext:
        cv2.imwrite(osp.join(folder, stem + ext), np.full((h, w, 3), 127, np.uint8))
    with open(osp.join(folder, stem + '.json'), 'w') as f:
        json.dump(record, f)


def _mask(*boxes):
    """Boxes filled as OpenCV fills an integer rectangle polygon (both ends inclusive)."""
    m = np.zeros((H, W), bool)
    for x0, y0, x1, y1 in boxes:
        m[y0:y1 + 1, x0:x1 + 1] = True
    return m


# a: long queries; a target rectangle with a smaller ignore hole (painted later: ignore wins) and a flag.
A_TARGET = _mask((2, 2, 12, 9)) & ~_mask((4, 4, 6, 6))
A_IGNORE = _mask((4, 4, 6, 6))
# b: a short query; two target pieces inside a larger ignore region (painted later: targets win).
B_TARGET = _mask((3, 3, 6, 6), (12, 10, 15, 12))
B_IGNORE = _mask((0, 0, 20, 15)) & ~B_TARGET


@pytest.fixture
def reason_root(tmp_path):
    root = str(tmp_path)
    folder = osp.join(root, 'ReasonSeg', 'train')
    _write(folder, 'a', _labelme(
        ['What in this picture can hold water?', ' What would you drink from? '],
        [_shape('target', _rect(2, 2, 12, 9)), _shape('ignore', _rect(4, 4, 6, 6)),
         _shape('flag', _rect(20, 15, 25, 18))], True, 'a.jpg'))
    _write(folder, 'b', _labelme(
        ['the red ball'],
        [_shape('ignore', _rect(0, 0, 20, 15)), _shape('target', _rect(3, 3, 6, 6)),
         _shape('target', [[12, 10], [15, 12]], shape_type='rectangle'), _shape('flag', _rect(1, 1, 2, 2))],
        False, 'C:\\labelme\\b.png'), ext='.png')
    os.makedirs(osp.join(root, 'ReasonSeg', 'explanatory'))
    with open(osp.join(root, 'ReasonSeg', 'explanatory', 'train.json'), 'w') as f:
        json.dump([dict(image='a.jpg', query='What in this picture can hold water?', outputs=EXPLANATION)], f)
    return root


def _build(root, test_mode=False, **kwargs):
    kwargs.setdefault('explain_file', 'ReasonSeg/explanatory/train.json')
    return XSAMReasonSegDataset(data_root=root, data_prefix=dict(img='ReasonSeg/train'), test_mode=test_mode,
                                serialize_data=False, **kwargs)


def _check_turns(sample):
    """One <SEG> per answer, phrase i in question i, instance i labelled i."""
    conv, phrases, instances = sample['conversations'], sample['phrases'], sample['instances']
    assert len(conv) == 2 * len(phrases) == 2 * len(instances) > 0
    assert conv[0]['value'].startswith('<image>\n')
    assert [inst['label'] for inst in instances] == list(range(len(phrases)))
    for i, phrase in enumerate(phrases):
        assert conv[2 * i]['value'].count('<p>') == 1 and format_phrase(phrase) in conv[2 * i]['value']
        assert '<SEG>' not in conv[2 * i]['value'] and conv[2 * i + 1]['value'].count('<SEG>') == 1


# ------------------------------------------------------------------------------------------------ training
def test_train_records_masks_and_ignore_regions(reason_root):
    ds = _build(reason_root)
    assert len(ds) == 2
    assert ds.shape_counts == dict(target=3, ignore=2, flag=2)
    assert sum(ds.skip_counts.values()) == 0
    np.random.seed(0)
    a, b = ds[0], ds[1]
    assert a['img_path'].endswith(osp.join('ReasonSeg', 'train', 'a.jpg')) and a['img_id'] == 'a'
    assert b['img_path'].endswith('b.png')  # the extension of imagePath, even a Windows path
    assert (a['split'], b['split']) == ('long', 'short')
    assert a['phrases'] == ['What in this picture can hold water?', 'What would you drink from?']  # stripped
    for sample, target, ignore in ((a, A_TARGET, A_IGNORE), (b, B_TARGET, B_IGNORE)):
        _check_turns(sample)
        assert (sample['height'], sample['width']) == (H, W) and sample['task'] == 'reaseg'
        for inst in sample['instances']:  # every query answers the same target
            assert np.array_equal(decode_mask(inst['mask'], H, W), target)
        assert np.array_equal(decode_mask(sample['ignore_mask'], H, W), ignore)
    assert a['explanation'] == EXPLANATION and b['explanation'] is None


def test_train_templates_follow_is_sentence_and_the_explanation(reason_root):
    ds = _build(reason_root, prompt_mode='fixed')
    a, b = ds[0], ds[1]
    assert a['conversations'][0]['value'] == '<image>\n' + REASEG_LONG_QUESTIONS[0].format(
        sent='<p>What in this picture can hold water?</p>')
    assert b['conversations'] == [
        {'from': 'human', 'value': '<image>\n' + REASEG_SHORT_QUESTIONS[0].format(sent='<p>the red ball</p>')},
        {'from': 'gpt', 'value': REASEG_ANSWERS[0]}]

    always = _build(reason_root, explain_prob=1.0)
    np.random.seed(0)
    for _ in range(5):
        a = always[0]
        _check_turns(a)
        for k in range(2):
            question = a['conversations'][2 * k]['value'].replace('<image>\n', '')
            assert question in {t.format(sent=format_phrase(a['phrases'][k])) for t in REASEG_EXPLAIN_QUESTIONS}
            answer = a['conversations'][2 * k + 1]['value']
            assert answer in {t.format(explanation=EXPLANATION) for t in REASEG_EXPLAIN_ANSWERS}
        assert always[1]['conversations'][1]['value'] in REASEG_ANSWERS  # no explanation for b

    half = _build(reason_root)
    np.random.seed(0)
    answers = [half[0]['conversations'][1]['value'] for _ in range(40)]
    explained = sum(ans.startswith(EXPLANATION) for ans in answers)
    assert 5 < explained < 35  # probability 0.5 per turn
    never = _build(reason_root, explain_file=None)
    assert all(never[0]['conversations'][1]['value'] in REASEG_ANSWERS for _ in range(10))


def test_train_conversations_vary_with_the_seed_and_are_reproducible(shapes_root):
    ds = XSAMReasonSegDataset(data_root=shapes_root, data_prefix=dict(img='reason_seg/train'),
                              explain_file='reason_seg/explanatory/train.json')
    assert len(ds) == len([f for f in os.listdir(osp.join(shapes_root, 'reason_seg', 'train')) if f.endswith('.json')])

    def draw(seed):
        np.random.seed(seed)
        return [ds[i]['conversations'] for i in range(len(ds))]

    first = draw(1)
    assert first == draw(1) and first != draw(2)
    np.random.seed(1)
    for i in range(len(ds)):
        _check_turns(ds[i])
        assert ds[i]['explanation']  # the generator explains every image


# ---------------------------------------------------------------------------------------------- evaluation
def test_eval_is_one_sample_per_query_with_the_first_template(reason_root):
    ds = _build(reason_root, test_mode=True)
    assert ds.prompt_mode == 'fixed' and len(ds) == 3
    samples = [ds[i] for i in range(3)]
    assert [s['sample_idx'] for s in samples] == [0, 1, 2]
    assert [s['split'] for s in samples] == ['long', 'long', 'short']
    assert [s['query_idx'] for s in samples] == [0, 1, 0]
    assert [s['phrases'] for s in samples] == [['What in this picture can hold water?'],
                                               ['What would you drink from?'], ['the red ball']]
    for s in samples:
        _check_turns(s)
        questions = REASEG_LONG_QUESTIONS if s['split'] == 'long' else REASEG_SHORT_QUESTIONS
        assert s['conversations'] == [
            {'from': 'human', 'value': '<image>\n' + questions[0].format(sent=format_phrase(s['phrases'][0]))},
            {'from': 'gpt', 'value': REASEG_ANSWERS[0]}]  # never the explanatory variant
        assert s['instances'][0]['label'] == 0
    assert [len(_build(reason_root, test_mode=True, query_type=q)) for q in ('sentence', 'phrase')] == [2, 1]


def test_eval_on_the_synthetic_val_split(shapes_root):
    folder = osp.join(shapes_root, 'reason_seg', 'val')
    records = []
    for name in sorted(os.listdir(folder)):
        if name.endswith('.json'):
            with open(osp.join(folder, name)) as f:
                records.append(json.load(f))
    ds = XSAMReasonSegDataset(data_root=shapes_root, data_prefix=dict(img='reason_seg/val'), test_mode=True)
    assert len(ds) == sum(len(r['text']) for r in records)
    expected = [('long' if r['is_sentence'] else 'short', q) for r in records for q in r['text']]
    assert [(ds[i]['split'], ds[i]['phrases'][0]) for i in range(len(ds))] == expected
    assert ds.shape_counts['ignore'] == sum(s['label'] == 'ignore' for r in records for s in r['shapes'])


def test_pipeline_decodes_target_and_ignore_masks(reason_root):
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = _build(reason_root, test_mode=True,
                    pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadXSAMAnnotations')])
        out = ds[2]
    assert out['gt_masks'].masks.shape == (1, H, W)
    assert np.array_equal(out['gt_masks'].masks[0].astype(bool), B_TARGET)
    assert np.array_equal(out['gt_ignore_mask'].masks[0].astype(bool), B_IGNORE)


# ---------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize('case, reason, message', [
    ('no_image', 'missing_image', r'c\.json: no image next to it'),
    ('no_target', 'no_target', r'c\.json: no target shape'),
    ('covered_target', 'no_target', r'c\.json: the target region is empty'),
    ('short_polygon', 'invalid_shape', r"c\.json: polygon 'target' has 2 points"),
    ('circle', 'invalid_shape', r"c\.json: shape 'target' has unsupported shape_type 'circle'"),
    ('no_text', 'no_text', r'c\.json: no query'),
    ('size', 'size_mismatch', r'c\.json: imageHeight/imageWidth 21x30 differ'),
    ('not_json', 'unreadable_json', r'c\.json: cannot read the JSON'),
])
def test_bad_files_raise_or_are_counted(reason_root, case, reason, message):
    folder = osp.join(reason_root, 'ReasonSeg', 'train')
    shapes = [_shape('target', _rect(1, 1, 5, 5))]
    text, ext, h = ['the thing'], '.jpg', H
    if case == 'no_image':
        ext = None
    elif case == 'no_target':
        shapes = [_shape('ignore', _rect(1, 1, 5, 5)), _shape('flag', _rect(1, 1, 5, 5))]
    elif case == 'covered_target':
        shapes = [_shape('target', _rect(1, 1, 5, 5)), _shape('ignore', _rect(1, 1, 5, 5))]
    elif case == 'short_polygon':
        shapes = [_shape('target', [[1, 1], [5, 5]])]
    elif case == 'circle':
        shapes = [_shape('target', [[3, 3], [5, 5]], shape_type='circle')]
    elif case == 'no_text':
        text = []
    elif case == 'size':
        h = H + 1
    _write(folder, 'c', _labelme(text, shapes, False, 'c.jpg', h=h), ext=ext)
    if case == 'not_json':
        with open(osp.join(folder, 'c.json'), 'w') as f:
            f.write('{"text": [')
    with pytest.raises(ValueError, match=message):
        _build(reason_root)
    ds = _build(reason_root, skip_invalid=True)
    assert ds.skip_counts[reason] == 1 and sum(ds.skip_counts.values()) == 1
    assert len(ds) == 2 and len(_build(reason_root, skip_invalid=True, test_mode=True)) == 3


def test_bad_arguments(tmp_path, reason_root):
    with pytest.raises(ValueError, match='query_type must be one of'):
        _build(reason_root, query_type='sentences')
    with pytest.raises(ValueError, match='explain_prob'):
        _build(reason_root, explain_prob=1.5)
    with pytest.raises(FileNotFoundError, match='labelme folder'):
        XSAMReasonSegDataset(data_root=str(tmp_path), data_prefix=dict(img='nowhere'))
