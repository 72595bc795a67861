"""XSAMGCGSegDataset: the four GCG parsers, phrase/span/mask pairing, answers, generation mode, bad input."""
import json
import os.path as osp
import re

import numpy as np
import pytest
from mmdet.registry import DATASETS

from mmxsam.datasets import XSAMGCGSegDataset
from mmxsam.datasets.gcg_seg_dataset import normalize_caption, tag_caption
from mmxsam.datasets.prompts import GCGSEG_ANSWERS, GCGSEG_QUESTIONS
from mmxsam.datasets.utils import decode_mask, encode_mask

H, W = 24, 32
PHRASE = re.compile(r'<p>(.*?)</p>')


def _rect(k: int) -> np.ndarray:
    """A distinct mask per k: rows [2k, 2k + 2)."""
    m = np.zeros((H, W), bool)
    m[2 * k:2 * k + 2, k:k + 5] = True
    return m


def _span(caption: str, phrase: str, lead: int = 0):
    s = caption.lower().index(phrase)
    return [s + lead, s + lead + len(phrase)]


def _write(tmp_path, obj, name):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return str(path)


def _mask(rec, i):
    return decode_mask(rec['instances'][i]['mask'], rec['height'], rec['width'])


def _answer_phrases(answer):
    return PHRASE.findall(answer)


# ---------------------------------------------------------------------------------------------- GranD-f / PSG
CAP = 'A man holding a red umbrella next to a dog.'
RAW_CAP = '  "' + CAP + '"'  # quotes and blanks are stripped; offsets below index RAW_CAP
LEAD = 3


def _grandf_records():
    good = dict(
        image_id='img_a', file_name='img_a.jpg', caption=RAW_CAP, height=H, width=W,
        groundings={  # deliberately not in caption order
            'a dog': dict(token_positives=_span(CAP, 'a dog', LEAD), rle_masks=[encode_mask(_rect(3))]),
            'A man': dict(token_positives=_span(CAP, 'a man', LEAD),  # union of two masks
                          rle_masks=[encode_mask(_rect(0)), encode_mask(_rect(5))]),
            'red umbrella': dict(token_positives=_span(CAP, 'red umbrella', LEAD),  # overlaps the next one
                                 rle_masks=[encode_mask(_rect(7))]),
            'a red umbrella': dict(token_positives=_span(CAP, 'a red umbrella', LEAD),
                                   rle_masks=[encode_mask(_rect(1))]),
            'a cat': dict(token_positives=[0, 5], rle_masks=[encode_mask(_rect(2))]),  # not in the caption
            'dog.': dict(token_positives=[40, 99], rle_masks=[encode_mask(_rect(2))]),  # span past the end
            'next': dict(token_positives=_span(CAP, 'next', LEAD), rle_masks=[encode_mask(np.zeros((H, W)))]),
            'next to': dict(token_positives=_span(CAP, 'next to', LEAD),  # wrong mask size
                            rle_masks=[encode_mask(np.ones((H + 1, W)))]),
        })
    hopeless = dict(image_id='img_b', file_name='img_b.jpg', caption='A blue sky.', height=H, width=W,
                    groundings={'a blue sky': dict(token_positives=[5, 2], rle_masks=[encode_mask(_rect(1))]),  # 5 > 2
                                'green': dict(token_positives=[0, 5], rle_masks=[encode_mask(_rect(1))])})
    return [good, hopeless]


EXPECTED_PHRASES = ['a man', 'a red umbrella', 'a dog']
EXPECTED_MASKS = [_rect(0) | _rect(5), _rect(1), _rect(3)]
# the official tag_caption: '<p>span</p>' + ' ' (even before an existing space), stripped
EXPECTED_TAGGED = '<p>a man</p>  holding <p>a red umbrella</p>  next to <p>a dog</p> .'


@pytest.fixture
def grandf_ds(tmp_path):
    path = _write(tmp_path, _grandf_records(), 'GranDf_HA_GCG_train.json')
    return XSAMGCGSegDataset(ann_file=path, data_prefix=dict(img_path='grandf_imgs'), serialize_data=False)


def test_grandf_parse_spans_phrases_masks(grandf_ds):
    ds = grandf_ds
    assert len(ds) == 1
    rec = ds[0]
    assert rec['task'] == 'gcgseg' and rec['img_id'] == 'img_a'
    assert rec['img_path'] == osp.join('grandf_imgs', 'img_a.jpg') and (rec['height'], rec['width']) == (H, W)
    assert rec['caption'] == CAP.lower()
    assert rec['phrases'] == EXPECTED_PHRASES
    assert [rec['caption'][s:e] for s, e in rec['spans']] == EXPECTED_PHRASES
    assert [inst['label'] for inst in rec['instances']] == [0, 1, 2]
    for i, expected in enumerate(EXPECTED_MASKS):  # phrase i's mask is phrase i's grounding
        np.testing.assert_array_equal(_mask(rec, i), expected)
    assert dict(ds.skipped_phrases) == dict(phrase_not_found=2, invalid_span=2, overlapping_span=1, empty_mask=1,
                                            invalid_mask=1)
    assert dict(ds.skipped_images) == dict(no_phrase=1)
    assert ds.stats['images'] == 1 and ds.stats['phrases'] == 3


def test_grandf_training_answer(grandf_ds):
    np.random.seed(0)
    rec = grandf_ds[0]
    (human, gpt) = rec['conversations']
    assert human['from'] == 'human' and gpt['from'] == 'gpt'
    assert human['value'].startswith('<image>\n') and human['value'][len('<image>\n'):] in GCGSEG_QUESTIONS
    answer = gpt['value']
    assert answer.count('<SEG>') == 1 and '<SEG>' not in human['value']
    assert _answer_phrases(answer) == rec['phrases']  # the i-th <p>..</p> is phrase i
    assert answer.startswith(EXPECTED_TAGGED + ' ')
    assert answer in [a.replace('{caption}', EXPECTED_TAGGED) for a in GCGSEG_ANSWERS]


def test_tag_caption_matches_the_official_rule():
    cap = 'a man holding a red umbrella next to a dog.'
    spans = [_span(cap, p) for p in EXPECTED_PHRASES]
    assert tag_caption(cap, spans) == EXPECTED_TAGGED
    assert tag_caption(cap, spans[::-1]) == EXPECTED_TAGGED  # order given does not matter
    assert tag_caption('dog', [[0, 3]]) == '<p>dog</p>'  # trailing space stripped
    assert normalize_caption('  "A Dog."') == ('a dog.', 3)


def test_training_varies_with_the_seed_and_eval_is_fixed(tmp_path):
    path = _write(tmp_path, _grandf_records(), 'g.json')
    train = XSAMGCGSegDataset(ann_file=path, serialize_data=False)

    def draws(ds, n=24):
        return [tuple(t['value'] for t in ds[0]['conversations']) for _ in range(n)]

    np.random.seed(1024)
    first = draws(train)
    np.random.seed(1024)
    assert draws(train) == first
    assert len({q for q, _ in first}) > 1 and len({a for _, a in first}) > 1
    assert all(a.count('<SEG>') == 1 and _answer_phrases(a) == EXPECTED_PHRASES for _, a in first)

    fixed = XSAMGCGSegDataset(ann_file=path, prompt_mode='fixed', serialize_data=False)
    assert not fixed.generation_mode
    assert set(draws(fixed, 4)) == {('<image>\n' + GCGSEG_QUESTIONS[0],
                                     GCGSEG_ANSWERS[0].replace('{caption}', EXPECTED_TAGGED))}


def test_test_mode_is_generation_mode_and_keeps_the_ground_truth(tmp_path):
    path = _write(tmp_path, _grandf_records(), 'g.json')
    ds = XSAMGCGSegDataset(ann_file=path, test_mode=True)
    assert ds.generation_mode and ds.prompt_mode == 'fixed'
    for _ in range(3):
        rec = ds[0]
        assert rec['conversations'] == [{'from': 'human', 'value': '<image>\n' + GCGSEG_QUESTIONS[0]},
                                        {'from': 'gpt', 'value': None}]
        assert rec['phrases'] == EXPECTED_PHRASES and len(rec['instances']) == 3


def test_psg_is_the_grandf_layout(tmp_path):
    path = _write(tmp_path, _grandf_records(), 'OpenPsgGCG_train.json')
    ds = XSAMGCGSegDataset(ann_file=path, ann_format='psg', serialize_data=False)
    assert ds[0]['phrases'] == EXPECTED_PHRASES


def test_skip_empty_false_raises_naming_the_image(tmp_path):
    path = _write(tmp_path, _grandf_records(), 'g.json')
    with pytest.raises(ValueError, match=r"image 'img_b' \(img_b.jpg\) has no valid grounded phrase"):
        XSAMGCGSegDataset(ann_file=path, skip_empty=False)


def test_malformed_files_raise(tmp_path):
    with pytest.raises(ValueError, match="missing \\['groundings'\\]"):
        XSAMGCGSegDataset(ann_file=_write(tmp_path, [dict(caption='a', file_name='x.jpg')], 'a.json'))
    with pytest.raises(ValueError, match='holds a list'):
        XSAMGCGSegDataset(ann_file=_write(tmp_path, dict(images=[]), 'b.json'))
    with pytest.raises(ValueError, match='ann_format must be one of'):
        XSAMGCGSegDataset(ann_file=_write(tmp_path, [], 'c.json'), ann_format='coco')


# ---------------------------------------------------------------------------------------------- RefCOCOg-GCG
def _poly(k):
    """The polygon of _rect(k) (pixel-edge coordinates)."""
    x0, y0, x1, y1 = k, 2 * k, k + 5, 2 * k + 2
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def test_refcocog_gcg(tmp_path):
    cap = 'A woman riding a bike on the road. The woman wears a hat.'
    data = [{'COCO_train2014_000000000009.jpg': dict(
        img_file_name='COCO_train2014_000000000009.jpg', caption=cap, height=H, width=W,
        refs=[dict(sentence='the road', segmentation=[_poly(4)]),
              dict(sentence='A woman riding a bike', segmentation=[_poly(1)]),
              dict(sentence='a woman riding a bike', segmentation=encode_mask(_rect(6))),  # same span: union
              dict(sentence='a tree', segmentation=[_poly(2)]),  # not in the caption
              dict(sentence='a bike', segmentation=[_poly(3)]),  # inside the first phrase: overlap
              dict(sentence='"a hat"', segmentation=[_poly(8)])])}]
    ds = XSAMGCGSegDataset(ann_file=_write(tmp_path, data, 'RefCOCOg_GCG_train.json'), ann_format='refcocog',
                           data_root=str(tmp_path), data_prefix=dict(img_path='coco/train2014'),
                           serialize_data=False)
    rec = ds[0]
    assert rec['img_id'] == 0 and rec['img_path'] == osp.join(str(tmp_path), 'coco/train2014',
                                                              'COCO_train2014_000000000009.jpg')
    assert rec['phrases'] == ['a woman riding a bike', 'the road', 'a hat']
    for i, expected in enumerate([_rect(1) | _rect(6), _rect(4), _rect(8)]):
        np.testing.assert_array_equal(_mask(rec, i), expected)
    assert dict(ds.skipped_phrases) == dict(phrase_not_found=1, overlapping_span=1)
    assert ds.stats['merged_duplicates'] == 1
    answer = rec['conversations'][1]['value']
    assert _answer_phrases(answer) == rec['phrases'] and answer.count('<SEG>') == 1


# ---------------------------------------------------------------------------------------------- Flickr
def test_flickr_gcg(tmp_path):
    cap = 'Two men play chess in a park.'
    data = dict(
        images=[dict(id=11, file_name='1000.jpg', caption=cap, height=H, width=W),
                dict(id=12, file_name='1001.jpg', caption='A dog.', height=H, width=W),  # too short
                dict(id=13, file_name='1002.jpg', caption='Nothing grounded here at all.', height=H, width=W)],
        annotations=[
            dict(id=1, image_id=11, tokens_positive=[_span(cap, 'a park')], sam_mask=encode_mask(_rect(2))),
            dict(id=2, image_id=11, tokens_positive=[_span(cap, 'two men')], sam_mask=encode_mask(_rect(0))),
            dict(id=3, image_id=11, tokens_positive=[_span(cap, 'two men')], sam_mask=encode_mask(_rect(4))),
            dict(id=4, image_id=11, tokens_positive=[_span(cap, 'chess')], sam_mask=encode_mask(_rect(6))),
            dict(id=5, image_id=12, tokens_positive=[[0, 5]], sam_mask=encode_mask(_rect(6))),
            dict(id=6, image_id=13, tokens_positive=[[-1, 3]], sam_mask=encode_mask(_rect(6)))])
    ds = XSAMGCGSegDataset(ann_file=_write(tmp_path, data, 'flickr_mergedGT_GCG_train.json'), ann_format='flickr',
                           serialize_data=False)
    assert len(ds) == 1
    rec = ds[0]
    assert rec['img_id'] == 11 and rec['phrases'] == ['two men', 'chess', 'a park']
    for i, expected in enumerate([_rect(0) | _rect(4), _rect(6), _rect(2)]):
        np.testing.assert_array_equal(_mask(rec, i), expected)
    assert dict(ds.skipped_images) == dict(short_caption=1, no_phrase=1)
    assert dict(ds.skipped_phrases) == dict(invalid_span=1) and ds.stats['merged_duplicates'] == 1


# ---------------------------------------------------------------------------------------------- val_test
def _val_test_pair(tmp_path):
    images = [dict(id='sa_1', file_name='sa_1.jpg', height=H, width=W), dict(id='sa_2', height=H, width=W)]
    masks = dict(images=images, categories=[dict(id=1, name='object')],
                 annotations=[dict(id=1, image_id='sa_1', category_id=1, segmentation=encode_mask(_rect(1)),
                                   area=10.0, bbox=[1, 2, 5, 2], iscrowd=0)])
    caps = dict(images=images, annotations=[dict(id=1, image_id='sa_1', caption='a dog.'),
                                            dict(id=2, image_id='sa_2', caption='a cat.')])
    _write(tmp_path, masks, 'val_test/val_gcg_coco_mask_gt.json')
    _write(tmp_path, caps, 'val_test/val_gcg_coco_caption_gt.json')


def test_val_test_generation_records_and_metainfo(tmp_path):
    _val_test_pair(tmp_path)
    ds = DATASETS.build(dict(type='XSAMGCGSegDataset', ann_format='val_test', data_root=str(tmp_path),
                             ann_file='val_test/val_gcg_coco_mask_gt.json', data_prefix=dict(img_path='imgs'),
                             test_mode=True))
    meta = ds.metainfo
    assert meta['mask_gt_file'] == osp.join(str(tmp_path), 'val_test/val_gcg_coco_mask_gt.json')
    assert meta['caption_gt_file'] == osp.join(str(tmp_path), 'val_test/val_gcg_coco_caption_gt.json')
    assert len(ds) == 2
    a, b = ds[0], ds[1]
    assert a['img_id'] == 'sa_1' and a['img_path'] == osp.join(str(tmp_path), 'imgs', 'sa_1.jpg')
    assert b['img_path'] == osp.join(str(tmp_path), 'imgs', 'sa_2.jpg')  # no file_name: id + '.jpg'
    for rec in (a, b):
        assert rec['instances'] == [] and rec['phrases'] == [] and rec['caption'] is None
        assert rec['conversations'] == [{'from': 'human', 'value': '<image>\n' + GCGSEG_QUESTIONS[0]},
                                        {'from': 'gpt', 'value': None}]

    explicit = XSAMGCGSegDataset(ann_format='val_test', data_root=str(tmp_path),
                                 ann_file='val_test/val_gcg_coco_mask_gt.json', caption_ann_file='other.json')
    assert explicit.metainfo['caption_gt_file'] == osp.join(str(tmp_path), 'other.json')
    assert explicit.generation_mode  # val_test implies it
    (tmp_path / 'val_test' / 'val_gcg_coco_caption_gt.json').unlink()  # no caption GT: None (and a warning)
    alone = XSAMGCGSegDataset(ann_format='val_test', ann_file=str(tmp_path / 'val_test/val_gcg_coco_mask_gt.json'))
    assert alone.metainfo['caption_gt_file'] is None and len(alone) == 2
    with pytest.raises(ValueError, match='needs generation_mode=True'):
        XSAMGCGSegDataset(ann_format='val_test', ann_file='x.json', generation_mode=False)


# ---------------------------------------------------------------------------------------------- shapes
def test_shapes_grandf_and_val_test(shapes_root):
    raw = json.load(open(osp.join(shapes_root, 'gcg', 'grandf_gcg_train.json')))
    ds = DATASETS.build(dict(type='XSAMGCGSegDataset', data_root=shapes_root, ann_file='gcg/grandf_gcg_train.json',
                             data_prefix=dict(img_path='images/')))
    assert len(ds) == len(raw) and sum(ds.skipped_phrases.values()) == 0
    np.random.seed(3)
    for i, src in enumerate(raw):
        rec = ds[i]
        assert osp.isfile(rec['img_path'])
        expected = sorted(src['groundings'].items(), key=lambda kv: kv[1]['token_positives'][0])
        assert rec['phrases'] == [p.lower() for p, _ in expected]
        for k, (_, g) in enumerate(expected):
            np.testing.assert_array_equal(_mask(rec, k), decode_mask(g['rle_masks'], rec['height'], rec['width']))
        answer = rec['conversations'][1]['value']
        assert answer.count('<SEG>') == 1 and _answer_phrases(answer) == rec['phrases']
        assert re.sub('<p>|</p> ', '', answer).startswith(rec['caption'])  # tags + the inserted space

    val = DATASETS.build(dict(type='XSAMGCGSegDataset', ann_format='val_test', data_root=shapes_root,
                              ann_file='gcg/val_test/val_gcg_coco_mask_gt.json', data_prefix=dict(img_path='images/'),
                              test_mode=True))
    images = json.load(open(val.metainfo['mask_gt_file']))['images']
    assert len(val) == len(images) and osp.isfile(val.metainfo['caption_gt_file'])
    assert all(osp.isfile(val[i]['img_path']) and val[i]['conversations'][1]['value'] is None for i in range(len(val)))
