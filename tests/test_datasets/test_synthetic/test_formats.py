"""The written files load with the real readers and agree with each other.

Readers: pycocotools (COCO, loadRes, COCOeval), panopticapi (rgb2id, pq_compute), mmdet's
CocoPanopticDataset / CocoDataset, the refer layout (pickle + instances.json), labelme polygons,
GranD-f spans, COCO-VGD prompts and LLaVA conversations.
"""
import glob
import json
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmxsam.datasets.synthetic import SHAPES_INSTANCE_METAINFO, SHAPES_PANOPTIC_METAINFO, clean_category_name
from mmxsam.datasets.synthetic.constants import COLOURS, CORNERS, SIZES, STUFF_IDS, THING_IDS
from mmxsam.datasets.synthetic.formats import SEMANTIC_LABEL
from mmxsam.datasets.utils import decode_mask


def load(root, *parts):
    with open(osp.join(root, *parts)) as f:
        return json.load(f)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope='module')
def coco(shapes_root):
    return COCO(osp.join(shapes_root, 'annotations', 'instances_val.json'))


@pytest.fixture(scope='module')
def meta(shapes_root):
    return {m['image_id']: m for m in load(shapes_root, 'annotations', 'meta_val.json')}


def test_instances_load_and_score_perfectly_against_themselves(coco):
    assert sorted(coco.getCatIds()) == THING_IDS
    results = [dict(image_id=a['image_id'], category_id=a['category_id'], segmentation=a['segmentation'],
                    score=1.0) for a in coco.loadAnns(coco.getAnnIds())]
    dt = coco.loadRes(results)
    ev = COCOeval(coco, dt, 'segm')
    ev.params.areaRng = [[0, 1e10]] * 4  # synthetic objects are all "small" by COCO's rule
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_instance_boxes_and_areas_match_masks(coco):
    for ann in coco.loadAnns(coco.getAnnIds()):
        m = coco.annToMask(ann).astype(bool)
        assert m.sum() == ann['area'] > 0
        x, y, w, h = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))).tolist()
        assert [x, y, w, h] == pytest.approx(ann['bbox'])


def test_panoptic_png_matches_segments_and_instances(shapes_root, coco):
    from panopticapi.utils import rgb2id
    pan = load(shapes_root, 'annotations', 'panoptic_val.json')
    assert {c['id'] for c in pan['categories']} == set(THING_IDS + STUFF_IDS)
    isthing = {c['id']: c['isthing'] for c in pan['categories']}
    assert isthing == {**{i: 1 for i in THING_IDS}, **{i: 0 for i in STUFF_IDS}}
    for ann in pan['annotations']:
        png = cv2.imread(osp.join(shapes_root, 'annotations', 'panoptic_val', ann['file_name']))[..., ::-1]
        ids = rgb2id(png)
        seg_ids = {s['id'] for s in ann['segments_info']}
        assert set(np.unique(ids).tolist()) == seg_ids  # every pixel belongs to exactly one segment
        inst = coco.loadAnns(coco.getAnnIds(imgIds=ann['image_id']))
        things = [s for s in ann['segments_info'] if s['category_id'] in THING_IDS]
        assert len(things) == len(inst)
        for seg, inst_ann in zip(things, inst):
            assert (ids == seg['id']).sum() == seg['area']
            assert np.array_equal(ids == seg['id'], coco.annToMask(inst_ann).astype(bool))
        sem = cv2.imread(osp.join(shapes_root, 'annotations', 'semantic_val', ann['file_name']), cv2.IMREAD_UNCHANGED)
        for seg in ann['segments_info']:
            assert (sem[ids == seg['id']] == SEMANTIC_LABEL[seg['category_id']]).all()


def test_panoptic_pq_of_ground_truth_is_100(shapes_root, tmp_path):
    from panopticapi.evaluation import pq_compute
    gt_json = osp.join(shapes_root, 'annotations', 'panoptic_val.json')
    gt_dir = osp.join(shapes_root, 'annotations', 'panoptic_val')
    res = pq_compute(gt_json, gt_json, gt_folder=gt_dir, pred_folder=gt_dir)
    assert res['All']['pq'] == pytest.approx(1.0)


def test_mmdet_panoptic_dataset_reads_it(shapes_root):
    from mmdet.datasets import CocoPanopticDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    ds = CocoPanopticDataset(
        data_root=shapes_root, ann_file='annotations/panoptic_val.json', metainfo=SHAPES_PANOPTIC_METAINFO,
        data_prefix=dict(img='images/', seg='annotations/panoptic_val/'), test_mode=True,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
                  dict(type='PackDetInputs')])
    assert len(ds) == 12
    item = ds[0]
    sample = item['data_samples']
    assert item['inputs'].shape == (3, 128, 128)
    labels = sample.gt_instances.labels.tolist()
    assert labels and all(0 <= l < len(SHAPES_PANOPTIC_METAINFO['thing_classes']) for l in labels)
    sem = sample.gt_sem_seg.sem_seg[0].numpy()
    assert sem.shape == (128, 128) and (sem < len(SHAPES_PANOPTIC_METAINFO['classes'])).all()


def test_mmdet_coco_dataset_reads_it(shapes_root):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    ds = CocoDataset(data_root=shapes_root, ann_file='annotations/instances_train.json',
                     metainfo=SHAPES_INSTANCE_METAINFO, data_prefix=dict(img='images/'),
                     pipeline=[dict(type='LoadImageFromFile'),
                               dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                               dict(type='PackDetInputs')])
    assert len(ds) == 24
    inst = ds[1]['data_samples'].gt_instances
    assert len(inst) == len(inst.masks) > 0
    m = inst.masks.to_ndarray()
    boxes = inst.bboxes.tensor.numpy()
    for k in range(len(inst)):
        ys, xs = np.nonzero(m[k])
        assert boxes[k].tolist() == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_refer_layout(shapes_root, meta):
    with open(osp.join(shapes_root, 'refshapes', 'refs(unc).p'), 'rb') as f:
        refs = pickle.load(f)
    inst = load(shapes_root, 'refshapes', 'instances.json')
    anns = {a['id']: a for a in inst['annotations']}
    imgs = {i['id']: i for i in inst['images']}
    exact = COCO(osp.join(shapes_root, 'annotations', 'instances_val.json'))
    assert {r['split'] for r in refs} == {'train', 'val'}
    assert len({r['ref_id'] for r in refs}) == len(refs)
    sent_ids = [s['sent_id'] for r in refs for s in r['sentences']]
    assert len(set(sent_ids)) == len(sent_ids)
    for ref in refs:
        ann = anns[ref['ann_id']]
        img = imgs[ref['image_id']]
        assert ann['image_id'] == ref['image_id'] and ann['category_id'] == ref['category_id']
        assert 1 <= len(ref['sentences']) <= 3 and ref['sent_ids'] == [s['sent_id'] for s in ref['sentences']]
        assert all(s['tokens'] == s['sent'].split() for s in ref['sentences'])
        assert isinstance(ann['segmentation'], list) and isinstance(ann['segmentation'][0], list)  # polygons
        if ref['split'] == 'val':
            poly = decode_mask(ann['segmentation'], img['height'], img['width'])
            assert iou(poly, exact.annToMask(exact.loadAnns(ref['ann_id'])[0]).astype(bool)) > 0.75
            # the expression names the object's own attributes
            obj = next(o for o in meta[ref['image_id']]['objects'] if o['ann_id'] == ref['ann_id'])
            for s in ref['sentences']:
                words = s['sent'].split()
                assert obj['shape'] in words or obj['colour'] in words


def test_referring_expressions_are_unique_in_their_image(shapes_root, meta):
    """Re-evaluate each expression on the image's attribute table: it must select only its object."""
    with open(osp.join(shapes_root, 'refshapes', 'refs(unc).p'), 'rb') as f:
        refs = [r for r in pickle.load(f) if r['split'] == 'val']
    vocab = {**{w: 'shape' for w in CORNERS}, **{w: 'colour' for w in COLOURS}, **{w: 'size' for w in SIZES}}
    where = {'on the left': ('hpos', 'left'), 'in the middle': ('hpos', 'middle'), 'on the right': ('hpos', 'right'),
             'at the top': ('vpos', 'top'), 'at the bottom': ('vpos', 'bottom')}
    for ref in refs:
        objects = meta[ref['image_id']]['objects']
        for s in ref['sentences']:
            text = s['sent']
            if 'leftmost' in text or 'rightmost' in text or 'from the left' in text:
                continue  # ordinal fallback for look-alikes, checked by construction
            conds = []
            for phrase, (key, value) in where.items():
                if text.endswith(phrase):
                    conds.append((key, value))
                    text = text[:-len(phrase)].strip()
            for w in text.split()[1:]:  # 'the' first; 'shape' (as in 'the red shape') constrains nothing
                if w != 'shape':
                    conds.append((vocab[w], w))
            hits = [o['ann_id'] for o in objects if all(o[k] == v for k, v in conds)]
            assert hits == [ref['ann_id']], (s['sent'], conds, objects)


def test_reasonseg_labelme(shapes_root, meta):
    files = sorted(glob.glob(osp.join(shapes_root, 'reason_seg', 'val', '*.json')))
    assert files
    exact = COCO(osp.join(shapes_root, 'annotations', 'instances_val.json'))
    by_file = {m['file_name']: m for m in meta.values()}
    for path in files:
        rec = load(path)
        assert rec['text'] and isinstance(rec['is_sentence'], bool)
        assert osp.exists(path.replace('.json', '.jpg'))
        m = by_file[rec['imagePath']]
        target = np.zeros((rec['imageHeight'], rec['imageWidth']), bool)
        for shape in rec['shapes']:
            assert shape['shape_type'] == 'polygon' and shape['label'] in ('target', 'ignore')
            if shape['label'] == 'target':
                target |= decode_mask([np.asarray(shape['points']).reshape(-1).tolist()], *target.shape)
        # the target polygon is one object's mask
        anns = exact.loadAnns(exact.getAnnIds(imgIds=m['image_id']))
        best = max(iou(target, exact.annToMask(a).astype(bool)) for a in anns)
        assert best > 0.75
        if rec['is_sentence']:
            assert all(t.endswith('?') for t in rec['text'])
    expl = load(shapes_root, 'reason_seg', 'explanatory', 'train.json')
    assert expl and {'image', 'query', 'outputs'} <= set(expl[0])


def test_gcg_phrases_spans_and_masks(shapes_root, meta):
    grandf = load(shapes_root, 'gcg', 'grandf_gcg_val.json')
    by_file = {m['file_name']: m for m in meta.values()}
    for rec in grandf:
        cap = rec['caption']
        h, w = rec['height'], rec['width']
        union = np.zeros((h, w), int)
        last_end = -1
        for phrase, g in rec['groundings'].items():
            s, e = g['token_positives']
            assert cap[s:e] == phrase and s > last_end  # spans in order, not overlapping
            last_end = e
            mask = decode_mask(g['rle_masks'], h, w)
            assert mask.any()
            union += mask
        assert (union <= 1).all()  # groundings are disjoint
        assert (union == 1).all()  # ...and cover the image (objects + stuff are all named)
        m = by_file[rec['file_name']]
        for obj in m['objects']:
            assert f'{obj["colour"]} {obj["shape"]}' in cap
        for stuff in m['stuff']:
            assert f'the {stuff["name"]}' in cap
    mask_gt = COCO(osp.join(shapes_root, 'gcg', 'val_test', 'val_gcg_coco_mask_gt.json'))
    caps = load(shapes_root, 'gcg', 'val_test', 'val_gcg_coco_caption_gt.json')
    assert len(mask_gt.getImgIds()) == len(grandf) == len(caps['annotations'])
    assert {a['image_id'] for a in caps['annotations']} == {r['image_id'] for r in grandf}
    for rec in grandf:
        assert len(mask_gt.getAnnIds(imgIds=[rec['image_id']])) == len(rec['groundings'])
        assert osp.splitext(rec['file_name'])[0] == rec['image_id']  # val_test layout: file = id + '.jpg'


def test_vgd_prompts(shapes_root, coco):
    vgd = load(shapes_root, 'vgd', 'vgd_val.json')
    assert len(vgd) == len(coco.getImgIds())
    keys = {'point_visual_prompt', 'scribble_visual_prompt', 'box_visual_prompt', 'mask_visual_prompt'}
    n = 0
    for rec in vgd:
        h, w = rec['image_size']
        assert rec['image_info']['file_name'] == rec['image_file']
        for ann in rec['annotations']:
            gt = decode_mask(ann['segmentation'], h, w)
            assert np.array_equal(gt, coco.annToMask(coco.loadAnns(ann['id'])[0]).astype(bool))
            assert set(ann['visual_prompts']) == keys and ann['bbox_mode'] == 1
            p = {k: decode_mask(v, h, w) for k, v in ann['visual_prompts'].items()}
            assert all(v.any() for v in p.values()), ann['id']
            # the point disc is centred inside the object; the box covers most of it; the mask prompt is close
            ys, xs = np.nonzero(p['point_visual_prompt'])
            assert gt[int(round(ys.mean())), int(round(xs.mean()))] or (p['point_visual_prompt'] & gt).any()
            assert (p['box_visual_prompt'] & gt).sum() >= 0.6 * gt.sum()
            assert (p['scribble_visual_prompt'] & gt).any() or iou(p['box_visual_prompt'], gt) < 0.5
            n += 1
    assert n == len(coco.getAnnIds())


def test_llava_conversations(shapes_root, meta):
    convs = load(shapes_root, 'llava', 'conversations_val.json')
    by_file = {m['file_name']: m for m in meta.values()}
    text_only = [c for c in convs if 'image' not in c]
    assert text_only and all('<image>' not in t['value'] for c in text_only for t in c['conversations'])
    for c in convs:
        turns = c['conversations']
        assert [t['from'] for t in turns] == ['human', 'gpt'] * (len(turns) // 2)
        if 'image' in c:
            assert turns[0]['value'].startswith('<image>\n')
            assert sum('<image>' in t['value'] for t in turns) == 1
            objects = by_file[c['image']]['objects']
            for q, a in zip(turns[::2], turns[1::2]):
                if 'How many shapes' in q['value']:
                    assert a['value'].split()[2] in ('no', 'one', 'two', 'three', 'four', 'five')
                    n = ('no', 'one', 'two', 'three', 'four', 'five').index(a['value'].split()[2])
                    assert n == len(objects)
    pre = load(shapes_root, 'llava', 'pretrain_val.json')
    assert all(p['conversations'][0]['value'].startswith('<image>\n') for p in pre)


def test_category_names_clean_like_xsam():
    assert clean_category_name('sky-other-merged') == 'sky'
    assert clean_category_name('Wall-Other-Merged') == 'wall'
    assert clean_category_name('grass-merged') == 'grass'
    assert clean_category_name('playingfield-stuff') == 'playingfield'
    assert clean_category_name('wall-brick') == 'wall brick'
