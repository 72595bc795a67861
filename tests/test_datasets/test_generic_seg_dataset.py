"""XSAMGenericSegDataset / XSAMOVSegDataset + LoadPanopticSegments: COCO panoptic -> genseg/ovseg samples."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image

import mmxsam  # noqa: F401
from mmxsam.datasets import XSAMGenericSegDataset, XSAMOVSegDataset
from mmxsam.datasets.prompts import get_task_prompts
from mmxsam.datasets.utils import decode_mask

# ----------------------------------------------------------------------------------------------- helpers


def png_ids(path):
    """Segment-id map of a COCO panoptic PNG, decoded independently of the code under test."""
    rgb = np.asarray(Image.open(path).convert('RGB'), dtype=np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def pipeline(**kw):
    init_default_scope('mmdet')
    return [dict(type='LoadImageFromFile'), dict(type='LoadPanopticSegments', **kw)]


def shapes(root, split='train', **kw):
    kw.setdefault('pipeline', pipeline())
    return XSAMGenericSegDataset(data_root=root, ann_file=f'annotations/panoptic_{split}.json',
                                 data_prefix=dict(img='images/', seg=f'annotations/panoptic_{split}/'), **kw)


def check_pairing(sample, categories):
    """Row k of gt_masks is exactly the PNG segment of instance k, whose category is phrase[label k]."""
    ids = png_ids(sample['seg_map_path'])
    masks, labels = sample['gt_masks'].masks, sample['gt_bboxes_labels']
    assert masks.dtype == np.uint8 and labels.dtype == np.int64  # lean layout, never int64 masks
    assert masks.shape == (len(sample['instances']),) + ids.shape == (len(labels),) + ids.shape
    seg_cat = {s['id']: s['category_id'] for s in sample['segments_info']}
    for k, inst in enumerate(sample['instances']):
        assert labels[k] == inst['label']
        np.testing.assert_array_equal(masks[k].astype(bool), ids == inst['segment_id'])
        assert sample['phrases'][labels[k]] == categories[seg_cat[inst['segment_id']]]
        assert sample['category_ids'][labels[k]] == seg_cat[inst['segment_id']]


@pytest.fixture(scope='module')
def shapes_categories(shapes_root):
    from mmxsam.datasets.synthetic.constants import clean_category_name
    with open(osp.join(shapes_root, 'annotations', 'panoptic_train.json')) as f:
        return {c['id']: clean_category_name(c['name']) for c in json.load(f)['categories']}


# ------------------------------------------------------------------- a hand-written COCO panoptic fixture
CATEGORIES = [
    dict(id=1, name='person, individual', supercategory='person', isthing=1, color=[220, 20, 60]),
    dict(id=2, name='dog', supercategory='animal', isthing=1, color=[0, 0, 142]),
    dict(id=100, name='sky-other-merged', supercategory='sky', isthing=0, color=[70, 130, 180]),
    dict(id=200, name='wall-other-merged', supercategory='wall', isthing=0, color=[102, 102, 156]),
]
PERSON, CROWD, WALL, SKY, DOG = 1 + 256 * 2, 7, 3 + 256 * 256, 2, 3  # ids use the G and B channels too


def _write_png(path, ids):
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def write_panoptic(root, mutate=None):
    """2 images in the exact COCO panoptic layout: a.jpg (person, crowd of persons, wall stuff, a VOID
    patch) and b.jpg (sky stuff and a dog). ``mutate(json_dict)`` edits the JSON before it is written."""
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'panoptic'), exist_ok=True)
    a = np.zeros((6, 8), np.int64)
    a[:3, :3], a[:3, 5:], a[3:] = PERSON, CROWD, WALL  # a[:3, 3:5] stays VOID (0)
    b = np.full((4, 5), SKY, np.int64)
    b[2:, 3:] = DOG
    for name, ids in (('a', a), ('b', b)):
        _write_png(osp.join(root, 'panoptic', f'{name}.png'), ids)
        Image.fromarray(np.full(ids.shape + (3,), 128, np.uint8)).save(osp.join(root, 'images', f'{name}.jpg'))

    def seg(sid, cid, ids, crowd=0):
        ys, xs = np.nonzero(ids == sid)
        return dict(id=sid, category_id=cid, iscrowd=crowd, area=int(len(xs)),
                    bbox=[int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1])

    data = dict(
        info={}, licenses=[], categories=CATEGORIES,
        images=[dict(id=11, file_name='a.jpg', height=6, width=8), dict(id=12, file_name='b.jpg', height=4, width=5)],
        annotations=[
            dict(image_id=11, file_name='a.png',
                 segments_info=[seg(PERSON, 1, a), seg(CROWD, 1, a, crowd=1), seg(WALL, 200, a)]),
            dict(image_id=12, file_name='b.png', segments_info=[seg(SKY, 100, b), seg(DOG, 2, b)]),
        ])
    if mutate is not None:
        mutate(data)
    with open(osp.join(root, 'panoptic.json'), 'w') as f:
        json.dump(data, f)
    return root


def handmade(root, cls=XSAMGenericSegDataset, **kw):
    kw.setdefault('pipeline', pipeline())
    kw.setdefault('serialize_data', False)  # mmengine's serialisation runs gc.collect(): slow in a big process
    return cls(data_root=root, ann_file='panoptic.json', data_prefix=dict(img='images/', seg='panoptic/'), **kw)


@pytest.fixture
def pan_root(tmp_path):
    return write_panoptic(str(tmp_path))


# ------------------------------------------------------------------------------------------ shapes data


def test_metainfo_raw_and_cleaned_names(shapes_root):
    meta = shapes(shapes_root, 'val', test_mode=True).metainfo
    assert meta['category_ids'] == (1, 2, 3, 4, 5, 6, 101, 102, 103, 104, 105)
    assert meta['classes'][6] == 'sky-other-merged' and meta['class_phrases'][6] == 'sky'  # raw and cleaned
    assert meta['class_phrases'][-1] == 'wall' and meta['stuff_phrases'] == ('sky', 'grass', 'sand', 'water', 'wall')
    assert meta['thing_classes'] == ('circle', 'square', 'triangle', 'star', 'hexagon', 'cross')
    assert meta['classes'] == meta['thing_classes'] + meta['stuff_classes'] and len(meta['palette']) == 11


def test_eval_lists_every_category_in_id_order_with_the_first_template(shapes_root, shapes_categories):
    ds = shapes(shapes_root, 'val', test_mode=True)
    assert ds.prompt_mode == 'fixed'
    phrases = list(ds.metainfo['class_phrases'])
    tp = get_task_prompts('genseg')
    expected = tp.pick_question(None, categories=', '.join(f'<p>{p}</p>' for p in phrases))
    for i in range(len(ds)):
        sample = ds[i]
        assert sample['task'] == 'genseg' and sample['phrases'] == phrases
        assert sample['category_ids'] == sorted(shapes_categories)
        assert sample['conversations'] == [{'from': 'human', 'value': '<image>\n' + expected},
                                           {'from': 'gpt', 'value': tp.answers[0]}]
        # every non-crowd segment is a target, labelled with its category's index in metainfo['classes']
        assert len(sample['instances']) == len(sample['segments_info']) and sample['num_dropped_segments'] == 0
        assert [inst['label'] for inst in sample['instances']] == [s['category'] for s in sample['segments_info']]
        check_pairing(sample, shapes_categories)
    assert ds[0]['conversations'] == ds[0]['conversations']  # deterministic


def test_train_sampling_follows_the_seed_and_varies_per_read(shapes_root, shapes_categories):
    ds = shapes(shapes_root, pipeline=[])  # conversations only

    def draw():
        out = []
        for i in range(30):
            s = ds[i % 3]
            out.append((tuple(s['phrases']), s['conversations'][0]['value'], s['conversations'][1]['value']))
        return out

    np.random.seed(7)
    first = draw()
    np.random.seed(7)
    assert draw() == first  # reproducible from the run's seed
    assert len({f[0] for f in first[::3]}) > 1 and len({f[1] for f in first}) > 1  # re-drawn at every read
    sizes = {len(f[0]) for f in first}
    assert 11 in sizes and min(sizes) < 11  # both branches: every category / positives + some negatives
    assert any(list(f[0]) != sorted(f[0], key=list(ds.metainfo['class_phrases']).index)
               for f in first if len(f[0]) == 11)  # the full list is shuffled too
    np.random.seed(8)
    for _ in range(20):
        s = ds[1]
        assert len(set(s['phrases'])) == len(s['phrases'])
        positives = {shapes_categories[x['category_id']] for x in s['segments_info'] if not x['iscrowd']}
        assert positives <= set(s['phrases']) and s['num_dropped_segments'] == 0  # no cap: all targets kept


def test_train_labels_and_masks_stay_paired(shapes_root, shapes_categories):
    ds = shapes(shapes_root)
    np.random.seed(3)
    for i in range(len(ds)):
        sample = ds[i]
        assert len(sample['instances']) == len(sample['segments_info']) > 0
        check_pairing(sample, shapes_categories)


def test_max_categories_caps_the_list_and_counts_dropped_segments(shapes_root, shapes_categories):
    ds = shapes(shapes_root, max_categories=2, full_category_prob=0.0)
    np.random.seed(0)
    dropped = 0
    for i in range(len(ds)):
        sample = ds[i]
        n_pos = len({s['category_id'] for s in sample['segments_info']})
        assert 1 <= len(sample['phrases']) <= 2
        assert (sample['num_dropped_segments'] > 0) == (n_pos > 2)
        assert len(sample['instances']) + sample['num_dropped_segments'] == len(sample['segments_info'])
        dropped += sample['num_dropped_segments']
        check_pairing(sample, shapes_categories)
    assert dropped > 0 and ds.num_dropped_segments == dropped


def test_registry_build(shapes_root):
    from mmdet.registry import DATASETS, TRANSFORMS
    init_default_scope('mmdet')
    ds = DATASETS.build(dict(type='XSAMOVSegDataset', data_root=shapes_root, ann_file='annotations/panoptic_val.json',
                             data_prefix=dict(img='images/', seg='annotations/panoptic_val/'), test_mode=True))
    assert isinstance(ds, XSAMOVSegDataset) and ds[0]['task'] == 'ovseg'
    assert 'LoadPanopticSegments' in repr(TRANSFORMS.build(dict(type='LoadPanopticSegments')))


# ------------------------------------------------------------------------------- hand-written fixture


def test_handmade_crowd_excluded_stuff_kept(pan_root):
    ds = handmade(pan_root, test_mode=True)
    assert len(ds) == 2 and ds.num_crowd_segments == 1
    assert ds.metainfo['class_phrases'] == ('person, individual', 'dog', 'sky', 'wall')
    assert ds.metainfo['thing_classes'] == ('person, individual', 'dog')
    a = ds[0]
    assert a['img_id'] == 11 and a['seg_map_path'].endswith(osp.join('panoptic', 'a.png'))
    crowd = [s for s in a['segments_info'] if s['iscrowd']]
    assert [s['id'] for s in crowd] == [CROWD] and not crowd[0]['is_thing']  # kept for PQ (mmdet layout)
    assert [i['segment_id'] for i in a['instances']] == [PERSON, WALL]  # crowd is not a target
    assert a['gt_bboxes_labels'].tolist() == [0, 3]  # person, wall: indices in sorted-id order
    cats = {1: 'person, individual', 2: 'dog', 100: 'sky', 200: 'wall'}
    check_pairing(a, cats)
    assert a['gt_masks'].masks[1].sum() == 24 and a['gt_masks'].masks[0].sum() == 9
    assert a['gt_bboxes'].tensor.tolist() == [[0, 0, 3, 3], [0, 3, 8, 6]]
    assert not a['gt_ignore_flags'].any()
    b = ds[1]
    assert b['gt_bboxes_labels'].tolist() == [2, 1]  # sky, dog
    check_pairing(b, cats)


def test_handmade_training_and_rle_instances(pan_root):
    ds = handmade(pan_root, pipeline=pipeline(with_rle=True))
    cats = {1: 'person, individual', 2: 'dog', 100: 'sky', 200: 'wall'}
    np.random.seed(0)
    for _ in range(10):
        for i in range(2):
            s = ds[i]
            check_pairing(s, cats)
            for k, inst in enumerate(s['instances']):  # the record contract's COCO segmentation, same pixels
                np.testing.assert_array_equal(decode_mask(inst['mask'], *s['ori_shape']),
                                              s['gt_masks'].masks[k].astype(bool))


def test_ovseg_takes_the_first_synonym(pan_root):
    ds = handmade(pan_root, cls=XSAMOVSegDataset, test_mode=True)
    s = ds[0]
    assert s['task'] == 'ovseg' and s['phrases'] == ['person', 'dog', 'sky', 'wall']
    assert ds.metainfo['classes'][0] == 'person, individual'  # raw name kept for the metric
    assert '<p>person</p>, <p>dog</p>' in s['conversations'][0]['value']


def test_labels_match_mmdet_coco_panoptic_metric(pan_root):
    """Eval labels index metainfo['classes'], which CocoPanopticMetric maps back to category ids: the
    ground truth re-encoded as a prediction scores PQ 100."""
    from mmdet.evaluation import CocoPanopticMetric
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    ds = handmade(pan_root, test_mode=True)
    metric = CocoPanopticMetric(ann_file=osp.join(pan_root, 'panoptic.json'), seg_prefix=osp.join(pan_root, 'panoptic'),
                                nproc=1)
    metric.dataset_meta = ds.metainfo
    n_cls = len(ds.metainfo['classes'])
    samples = []
    for i in range(len(ds)):
        s = ds[i]
        pan = np.full(s['ori_shape'], n_cls, np.int64)  # VOID
        for k, label in enumerate(s['gt_bboxes_labels']):
            thing = ds.metainfo['classes'][label] in ds.metainfo['thing_classes']
            pan[s['gt_masks'].masks[k].astype(bool)] = label + (k + 1) * INSTANCE_OFFSET * thing
        samples.append(dict(img_id=s['img_id'], img_path=s['img_path'], ori_shape=s['ori_shape'],
                            pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pan)[None])))
    metric.process({}, samples)
    res = metric.compute_metrics(metric.results)
    assert res['PQ'] == pytest.approx(100.0)


# ------------------------------------------------------------------------------------------- bad input


def test_missing_image_or_png_is_named_on_read(pan_root):
    ds = handmade(pan_root, test_mode=True)
    os.remove(osp.join(pan_root, 'images', 'b.jpg'))
    os.remove(osp.join(pan_root, 'panoptic', 'a.png'))
    with pytest.raises(FileNotFoundError, match='b.jpg'):
        ds[1]
    with pytest.raises(FileNotFoundError, match=r'panoptic PNG not found: .*a\.png'):
        ds[0]


def test_unknown_category_raises_or_is_counted(tmp_path):
    def bad(data):
        data['annotations'][1]['segments_info'][1]['category_id'] = 999
    root = write_panoptic(str(tmp_path), bad)
    with pytest.raises(ValueError, match=r'panoptic\.json: image 12 \(b\.jpg\): segment 3 has unknown category_id 999'):
        handmade(root)
    ds = handmade(root, skip_invalid=True)
    assert len(ds) == 1 and ds.num_skipped['invalid'] == 1 and ds[0]['img_id'] == 11


@pytest.mark.parametrize('case, match', [
    ('repeated', 'segment id 513 is repeated'),
    ('void', r'segment id 0 is not a positive integer'),
    ('orphan', "refers to image_id 99, which is not in"),
    ('twice', 'image 12 .* has several annotations'),
])
def test_ill_formed_annotations(tmp_path, case, match):
    def mutate(data):
        segs = data['annotations'][0]['segments_info']
        if case == 'repeated':
            segs.append(dict(segs[0]))
        elif case == 'void':
            segs[0]['id'] = 0
        elif case == 'orphan':
            data['annotations'].append(dict(image_id=99, file_name='z.png', segments_info=[]))
        else:
            data['annotations'].append(dict(data['annotations'][1]))
    root = write_panoptic(str(tmp_path), mutate)
    with pytest.raises(ValueError, match=match):
        handmade(root)
    ds = handmade(root, skip_invalid=True)
    key = 'orphan' if case == 'orphan' else 'invalid'
    assert ds.num_skipped[key] == 1 and len(ds) == (2 if case == 'orphan' else 1)


def test_segment_missing_from_png(tmp_path):
    def ghost(data):  # a segment listed in the JSON but absent from a.png
        data['annotations'][0]['segments_info'].insert(1, dict(id=4242, category_id=2, iscrowd=0, area=5,
                                                               bbox=[0, 0, 1, 1]))
    root = write_panoptic(str(tmp_path), ghost)
    ds = handmade(root, test_mode=True)
    with pytest.raises(ValueError, match=r'a\.jpg \(img_id=11\): segment 4242 is not in the panoptic PNG .*a\.png'):
        ds[0]
    ds = handmade(root, test_mode=True, pipeline=pipeline(skip_invalid=True))
    s = ds[0]
    assert [i['segment_id'] for i in s['instances']] == [PERSON, WALL]
    assert s['gt_bboxes_labels'].tolist() == [0, 3]  # the dog's label left with its missing mask
    check_pairing(s, {1: 'person, individual', 2: 'dog', 100: 'sky', 200: 'wall'})
    assert ds.pipeline.transforms[1].num_skipped == 1


def test_png_of_the_wrong_size(tmp_path):
    root = write_panoptic(str(tmp_path))
    _write_png(osp.join(root, 'panoptic', 'b.png'), np.full((5, 5), SKY))
    with pytest.raises(ValueError, match=r'b\.png is 5x5 \(WxH\), the image is 5x4'):
        handmade(root, test_mode=True)[1]


def test_images_without_segments(tmp_path):
    def only_crowd(data):  # image a keeps only its crowd segment: nothing to segment
        data['annotations'][0]['segments_info'] = data['annotations'][0]['segments_info'][1:2]
    root = write_panoptic(str(tmp_path), only_crowd)
    ds = handmade(root, pipeline=[])
    assert len(ds) == 1 and ds.num_skipped['empty'] == 1  # counted skip in training
    kept = handmade(root, pipeline=[], filter_cfg=dict(filter_empty_gt=False))
    assert len(kept) == 2 and kept.num_skipped['empty'] == 0
    np.random.seed(0)
    for _ in range(20):  # still a valid prompt: at least one (negative) category, no targets
        s = kept[0]
        assert s['instances'] == [] and len(s['phrases']) >= 1
    assert len(handmade(root, pipeline=[], test_mode=True)) == 2  # evaluation keeps every image


def test_bad_arguments(pan_root):
    with pytest.raises(ValueError, match=r'training needs data_prefix\["seg"\]'):
        XSAMGenericSegDataset(data_root=pan_root, ann_file='panoptic.json', data_prefix=dict(img='images/'))
    with pytest.raises(ValueError, match='max_categories'):
        handmade(pan_root, max_categories=0)
    with pytest.raises(ValueError, match='full_category_prob'):
        handmade(pan_root, full_category_prob=1.5)
    with pytest.raises(ValueError, match=r"metainfo classes \['cat'\] are not categories"):
        handmade(pan_root, metainfo=dict(classes=('dog', 'cat')))


def test_restricted_classes(pan_root):
    ds = handmade(pan_root, test_mode=True, metainfo=dict(classes=('dog', 'sky-other-merged')))
    assert ds.metainfo['classes'] == ('dog', 'sky-other-merged') and ds.num_excluded_segments == 3
    b = ds[1]
    assert b['phrases'] == ['dog', 'sky'] and b['gt_bboxes_labels'].tolist() == [1, 0]
    check_pairing(b, {2: 'dog', 100: 'sky'})
