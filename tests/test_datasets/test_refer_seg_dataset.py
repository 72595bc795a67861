"""XSAMReferSegDataset: refer layout -> multi-turn training samples / one-sentence evaluation samples."""
import itertools
import json
import os.path as osp
import pickle
from collections import OrderedDict

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

from mmxsam.datasets import XSAMReferSegDataset
from mmxsam.datasets.prompts import REFSEG_ANSWERS, REFSEG_QUESTIONS, format_phrase
from mmxsam.datasets.refer_seg_dataset import combination, load_refs, num_combinations
from mmxsam.datasets.utils import decode_mask, encode_mask

H, W = 20, 30
SQUARE = [[2.0, 2.0, 10.0, 2.0, 10.0, 10.0, 2.0, 10.0]]
TRIANGLE = [[15.0, 3.0, 28.0, 3.0, 20.0, 17.0]]


def _write_refer(root, refs, anns, images=None):
    """The public refer layout: ``refs(unc).p`` (a pickled list) and a COCO ``instances.json``."""
    images = images if images is not None else [dict(id=1, file_name='COCO_train2014_000000000001.jpg',
                                                     height=H, width=W)]
    with open(osp.join(root, 'refs(unc).p'), 'wb') as f:
        pickle.dump(refs, f, protocol=2)
    with open(osp.join(root, 'instances.json'), 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=[dict(id=1, name='shape')]), f)
    for img in images:
        cv2.imwrite(osp.join(root, img['file_name']), np.full((img['height'], img['width'], 3), 127, np.uint8))


def _ref(ref_id, ann_id, sents, split='train', image_id=1):
    sentences = [dict(tokens=s.split(), raw=s, sent=s, sent_id=ref_id * 10 + k) for k, s in enumerate(sents)]
    return dict(ref_id=ref_id, ann_id=ann_id, image_id=image_id, split=split, sentences=sentences,
                sent_ids=[s['sent_id'] for s in sentences], category_id=1, file_name=f'x_{ann_id}.jpg')


def _ann(ann_id, segm, image_id=1):
    return dict(id=ann_id, image_id=image_id, category_id=1, segmentation=segm, area=1.0, bbox=[0, 0, 1, 1],
                iscrowd=0)


@pytest.fixture
def refer_root(tmp_path):
    refs = [_ref(101, 11, ['Left Square', 'the square', 'left square']), _ref(102, 12, ['the triangle'])]
    _write_refer(str(tmp_path), refs, [_ann(11, SQUARE), _ann(12, TRIANGLE), _ann(13, SQUARE)])
    return str(tmp_path)


def _build(root, split='train', test_mode=False, **kwargs):
    return XSAMReferSegDataset(data_root=root, refer_file='refs(unc).p', ann_file='instances.json', split=split,
                               data_prefix=dict(img=''), test_mode=test_mode, serialize_data=False, **kwargs)


def _check_sample(sample, sentences_of, masks_of):
    """Phrase i, turn i and instance i all refer to the same object; one <SEG> per answer."""
    phrases, instances, conv = sample['phrases'], sample['instances'], sample['conversations']
    assert len(conv) == 2 * len(phrases) == 2 * len(instances) > 0
    assert [inst['label'] for inst in instances] == list(range(len(phrases)))
    assert conv[0]['value'].startswith('<image>\n')
    for i, (phrase, inst) in enumerate(zip(phrases, instances)):
        human, gpt = conv[2 * i], conv[2 * i + 1]
        assert (human['from'], gpt['from']) == ('human', 'gpt')
        assert human['value'].count('<p>') == 1 and format_phrase(phrase) in human['value']
        assert '<SEG>' not in human['value'] and gpt['value'].count('<SEG>') == 1
        assert phrase in sentences_of[inst['ann_id']]
        mask = decode_mask(inst['mask'], sample['height'], sample['width'])
        assert mask.any() and np.array_equal(mask, masks_of[inst['ann_id']])


# ------------------------------------------------------------------------------------------------- helpers
def test_combination_follows_itertools_product_and_the_official_truncation():
    sizes = [2, 3, 1, 2]
    product = list(itertools.product(*map(range, sizes)))
    assert [tuple(combination(sizes, k)) for k in range(len(product))] == product
    assert num_combinations(sizes) == min(sum(sizes), len(product)) == 8
    assert num_combinations([1, 1, 1]) == 1 and num_combinations([3]) == 3
    assert num_combinations([50] * 40) == 2000  # no overflow, capped by the sentence count


def test_refs_pickle_is_read_without_running_code(tmp_path, refer_root):
    assert [r['ref_id'] for r in load_refs(osp.join(refer_root, 'refs(unc).p'))] == [101, 102]
    path = str(tmp_path / 'evil.p')
    with open(path, 'wb') as f:
        pickle.dump([OrderedDict(a=1)], f)  # needs a global: refused
    with pytest.raises(pickle.UnpicklingError, match='refusing to load collections.OrderedDict'):
        load_refs(path)


# ------------------------------------------------------------------------------------------------ training
def test_train_record_pairs_phrases_with_the_referred_masks(refer_root):
    ds = _build(refer_root)
    assert len(ds) == 1  # one record per image; ann 13 is not referred to
    sentences_of = {11: {'left square', 'the square'}, 12: {'the triangle'}}
    masks_of = {11: decode_mask(SQUARE, H, W), 12: decode_mask(TRIANGLE, H, W)}
    np.random.seed(0)
    seen_orders, seen_sents = set(), set()
    for _ in range(40):
        sample = ds[0]
        _check_sample(sample, sentences_of, masks_of)
        assert sample['task'] == 'refseg' and sample['split'] == 'train'
        assert sample['img_path'] == osp.join(refer_root, 'COCO_train2014_000000000001.jpg')
        seen_orders.add(tuple(inst['ann_id'] for inst in sample['instances']))
        seen_sents.add(tuple(sample['phrases']))
    assert seen_orders == {(11, 12), (12, 11)}  # the object order is shuffled per read
    # sentences lower-cased and de-duplicated; both combinations (2 = min(3 sentences, 2x1 product)) drawn
    assert {frozenset(s) for s in seen_sents} == {frozenset({'left square', 'the triangle'}),
                                                  frozenset({'the square', 'the triangle'})}


def test_train_conversations_vary_with_the_seed_and_are_reproducible(shapes_root):
    ds = XSAMReferSegDataset(data_root=shapes_root, refer_file='refshapes/refs(unc).p',
                             ann_file='refshapes/instances.json', split='train', data_prefix=dict(img='images'))

    def draw(seed):
        np.random.seed(seed)
        return [(ds[i]['conversations'], ds[i]['phrases']) for i in range(len(ds))]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)


def test_train_on_the_synthetic_refer_layout(shapes_root):
    ds = XSAMReferSegDataset(data_root=shapes_root, refer_file='refshapes/refs(unc).p',
                             ann_file='refshapes/instances.json', split='train', data_prefix=dict(img='images'))
    refs = [r for r in load_refs(osp.join(shapes_root, 'refshapes', 'refs(unc).p')) if r['split'] == 'train']
    with open(osp.join(shapes_root, 'refshapes', 'instances.json')) as f:
        coco = json.load(f)
    assert len(ds) == len({r['image_id'] for r in refs})
    sentences_of = {r['ann_id']: {s['sent'].lower() for s in r['sentences']} for r in refs}
    images = {img['id']: img for img in coco['images']}
    masks_of = {a['id']: decode_mask(a['segmentation'], images[a['image_id']]['height'],
                                     images[a['image_id']]['width'])
                for a in coco['annotations'] if a['id'] in sentences_of}
    np.random.seed(3)
    n_turns = 0
    for i in range(len(ds)):
        sample = ds[i]
        _check_sample(sample, sentences_of, masks_of)
        assert osp.isfile(sample['img_path'])
        n_turns += len(sample['phrases'])
    assert n_turns == len(refs)  # every referred object of the image is asked about once


def test_expand_combinations_gives_the_official_epoch_length(refer_root):
    ds = _build(refer_root, expand_combinations=True, prompt_mode='fixed')
    assert len(ds) == 2  # min(3 sentences, 2 x 1 combinations)
    assert [ds[k]['phrases'] for k in range(2)] == [['left square', 'the triangle'], ['the square', 'the triangle']]


def test_fixed_prompts_in_training_and_max_turns(refer_root):
    ds = _build(refer_root, prompt_mode='fixed', max_turns=1)
    sample = ds[0]
    assert sample['phrases'] == ['left square'] and [i['ann_id'] for i in sample['instances']] == [11]
    assert sample['conversations'][0]['value'] == '<image>\n' + REFSEG_QUESTIONS[0].format(phrase='<p>left square</p>')
    assert sample['conversations'][1]['value'] == REFSEG_ANSWERS[0]
    with pytest.raises(ValueError, match='max_turns'):
        _build(refer_root, max_turns=0)


# ---------------------------------------------------------------------------------------------- evaluation
def test_eval_is_one_sample_per_sentence_with_the_first_template(refer_root):
    ds = _build(refer_root, test_mode=True)
    assert ds.prompt_mode == 'fixed'
    assert len(ds) == 4  # every sentence of every ref (no de-duplication, as the refer protocol counts)
    samples = [ds[i] for i in range(len(ds))]
    assert [s['sample_idx'] for s in samples] == [0, 1, 2, 3]
    assert [s['sent_id'] for s in samples] == [1010, 1011, 1012, 1020]
    assert [s['phrases'] for s in samples] == [['left square'], ['the square'], ['left square'], ['the triangle']]
    for s in samples:
        assert s['split'] == 'train' and len(s['instances']) == 1 and s['instances'][0]['label'] == 0
        assert s['conversations'] == [
            {'from': 'human', 'value': '<image>\n' + REFSEG_QUESTIONS[0].format(phrase=format_phrase(s['phrases'][0]))},
            {'from': 'gpt', 'value': REFSEG_ANSWERS[0]}]
    masks = {11: decode_mask(SQUARE, H, W), 12: decode_mask(TRIANGLE, H, W)}
    for s in samples:
        assert np.array_equal(decode_mask(s['instances'][0]['mask'], H, W), masks[s['instances'][0]['ann_id']])
    np.random.seed(0)
    assert [ds[i]['conversations'] for i in range(4)] == [s['conversations'] for s in samples]


def test_eval_on_the_synthetic_val_split(shapes_root):
    ds = XSAMReferSegDataset(data_root=shapes_root, refer_file='refshapes/refs(unc).p',
                             ann_file='refshapes/instances.json', split='val', data_prefix=dict(img='images'),
                             test_mode=True)
    refs = [r for r in load_refs(osp.join(shapes_root, 'refshapes', 'refs(unc).p')) if r['split'] == 'val']
    assert len(ds) == sum(len(r['sentences']) for r in refs)
    sent_of = {s['sent_id']: (r['ann_id'], s['sent'].lower()) for r in refs for s in r['sentences']}
    seen = set()
    for i in range(len(ds)):
        s = ds[i]
        assert s['split'] == 'val' and (s['instances'][0]['ann_id'], s['phrases'][0]) == sent_of[s['sent_id']]
        seen.add(s['sent_id'])
    assert seen == set(sent_of)


def test_pipeline_decodes_the_masks(refer_root):
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = _build(refer_root, test_mode=True,
                    pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadXSAMAnnotations')])
        out = ds[3]
    assert out['gt_masks'].masks.shape == (1, H, W) and out['gt_masks'].masks.dtype == np.uint8
    assert np.array_equal(out['gt_masks'].masks[0].astype(bool), decode_mask(TRIANGLE, H, W))
    assert out['gt_bboxes_labels'].tolist() == [0]


# ---------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize('case, reason, message', [
    ('missing_ann', 'missing_ann', r'ref_id=102 \(ann_id=99, image_id=1\): ann_id not in the annotations'),
    ('missing_image', 'missing_image', r'ref_id=102 \(ann_id=12, image_id=7\): image_id not in the images'),
    ('short_polygon', 'invalid_segmentation', r'ref_id=102 .*fewer than 3 points'),
    ('empty_mask', 'empty_mask', r'ref_id=102 .*the mask is empty'),
    ('rle_size', 'invalid_segmentation', r'ref_id=102 .*does not match the image size'),
    ('no_sentence', 'no_sentence', r'ref_id=102 .*no sentence'),
])
def test_bad_refs_raise_or_are_counted(tmp_path, case, reason, message):
    good = _ref(101, 11, ['the square'])
    anns = [_ann(11, SQUARE), _ann(12, TRIANGLE)]
    bad = _ref(102, 12, ['the triangle'])
    if case == 'missing_ann':
        bad = _ref(102, 99, ['the triangle'])
    elif case == 'missing_image':
        bad = _ref(102, 12, ['the triangle'], image_id=7)
    elif case == 'short_polygon':
        anns[1] = _ann(12, [[15.0, 3.0, 28.0, 3.0]])
    elif case == 'empty_mask':
        anns[1] = _ann(12, encode_mask(np.zeros((H, W), bool)))
    elif case == 'rle_size':
        anns[1] = _ann(12, encode_mask(np.ones((H + 1, W), bool)))
    elif case == 'no_sentence':
        bad = _ref(102, 12, ['  '])
    _write_refer(str(tmp_path), [good, bad], anns)
    with pytest.raises(ValueError, match=message):
        _build(str(tmp_path))
    with pytest.raises(ValueError, match='skip_invalid=True'):
        _build(str(tmp_path), test_mode=True)
    ds = _build(str(tmp_path), skip_invalid=True)
    assert ds.skip_counts[reason] == 1 and sum(ds.skip_counts.values()) == 1
    assert len(ds) == 1 and [i['ann_id'] for i in ds[0]['instances']] == [11]
    assert len(_build(str(tmp_path), skip_invalid=True, test_mode=True)) == 1


def test_unknown_split_is_refused(refer_root):
    with pytest.raises(ValueError, match=r"no ref of split 'testA'; its splits are \['train'\]"):
        _build(refer_root, split='testA')
