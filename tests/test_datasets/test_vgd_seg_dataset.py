"""XSAMVGDSegDataset / XSAMInteractiveSegDataset: COCO-VGD layout -> region-prompted samples."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from pycocotools.coco import COCO

from mmxsam.datasets import XSAMInteractiveSegDataset, XSAMVGDSegDataset
from mmxsam.datasets.prompts import VGDSEG_ANSWERS, VGDSEG_QUESTIONS, format_regions
from mmxsam.datasets.utils import decode_mask, encode_mask
from mmxsam.datasets.utils.coco_vgd import build_vgd_records
from mmxsam.datasets.utils.visual_prompts import PROMPT_TYPES

VGD = 'vgd/vgd_val.json'


def _load(shapes_root, name=VGD):
    with open(osp.join(shapes_root, name)) as f:
        return json.load(f)


def _vgd(shapes_root, ann_file=VGD, **kwargs):
    kwargs.setdefault('data_prefix', dict(img='images'))
    return XSAMVGDSegDataset(data_root=shapes_root, ann_file=ann_file, **kwargs)


def _check_sample(sample, raw_by_id, task='vgdseg'):
    """Slot i's prompt is on an instance of slot i's category; its targets are all such instances (label i)."""
    rec = raw_by_id[sample['img_id']]
    h, w = rec['image_size']
    anns = {a['id']: a for a in rec['annotations'] if not a.get('iscrowd', 0)}
    k = len(sample['vprompts'])
    assert k >= 1 and sample['task'] == task
    assert sample['phrases'] == ['<region>'] * k
    assert len(sample['category_ids']) == len(sample['vprompt_types']) == len(sample['vprompt_ann_ids']) == k
    human, gpt = sample['conversations']
    assert human['from'] == 'human' and human['value'].startswith('<image>\n')
    assert human['value'].count('<p><region></p>') == k and gpt['value'].count('<SEG>') == 1
    for i, (cid, ann_id, t) in enumerate(zip(sample['category_ids'], sample['vprompt_ann_ids'],
                                             sample['vprompt_types'])):
        src = anns[ann_id]
        assert src['category_id'] == cid
        assert sample['vprompts'][i] == src['visual_prompts'][f'{t}_visual_prompt']
        prompt = decode_mask(sample['vprompts'][i], h, w)
        assert prompt.any()
        targets = [inst for inst in sample['instances'] if inst['label'] == i]
        if task == 'vgdseg':
            assert sorted(t['ann_id'] for t in targets) == sorted(a['id'] for a in anns.values()
                                                                  if a['category_id'] == cid)
        else:
            assert [t['ann_id'] for t in targets] == [ann_id]
        assert all(t['category_id'] == cid and t['mask'] == anns[t['ann_id']]['segmentation'] for t in targets)
        union = np.any([decode_mask(t['mask'], h, w) for t in targets], axis=0)
        assert (prompt & union).any()
    assert {inst['label'] for inst in sample['instances']} == set(range(k))


@pytest.mark.parametrize('prompt_type', PROMPT_TYPES)
def test_eval_on_the_synthetic_layout(shapes_root, prompt_type):
    raw = _load(shapes_root)
    by_id = {r['image_id']: r for r in raw}
    ds = _vgd(shapes_root, prompt_type=prompt_type, test_mode=True)
    assert len(ds) == len(raw) and ds.prompt_mode == 'fixed'
    for idx in range(len(ds)):
        sample = ds[idx]
        _check_sample(sample, by_id)
        assert sample['img_path'] == osp.join(shapes_root, 'images', by_id[sample['img_id']]['image_file'])
        assert set(sample['vprompt_types']) == {prompt_type}
        # positives only, sorted; first instance of each category prompts it; first template
        rec = by_id[sample['img_id']]
        cats = sorted({a['category_id'] for a in rec['annotations']})
        assert sample['category_ids'] == cats
        assert sample['vprompt_ann_ids'] == [next(a['id'] for a in rec['annotations'] if a['category_id'] == c)
                                             for c in cats]
        k = len(cats)
        assert sample['conversations'][0]['value'] == '<image>\n' + VGDSEG_QUESTIONS[0].format(
            regions=format_regions(k))
        assert sample['conversations'][1]['value'] == VGDSEG_ANSWERS[0]
        assert 'negative_category_ids' not in sample
    assert ds[3] == ds[3]


def test_train_random_prompts_reproducible(shapes_root):
    raw = _load(shapes_root)
    by_id = {r['image_id']: r for r in raw}
    ds = _vgd(shapes_root)
    assert ds.prompt_mode == 'random' and ds.prompt_type is None

    def draw(seed):
        np.random.seed(seed)
        return [ds[i] for i in range(len(ds))]

    first = draw(1)
    assert first == draw(1) and first != draw(2)
    types, orders, sources, questions = set(), set(), set(), set()
    np.random.seed(0)
    for _ in range(15):
        for idx in range(len(ds)):
            s = ds[idx]
            _check_sample(s, by_id)
            types.update(s['vprompt_types'])
            orders.add((idx, tuple(s['category_ids'])))
            sources.add((idx, tuple(s['vprompt_ann_ids'])))
            questions.add(s['conversations'][0]['value'])
    assert types == set(PROMPT_TYPES)
    multi = [i for i in range(len(ds)) if len({a['category_id'] for a in raw[i]['annotations']}) > 1]
    assert any(len({o for j, o in orders if j == i}) > 1 for i in multi)  # categories shuffled per read
    assert len(questions) > 1


def test_fixed_prompt_type_in_training(shapes_root):
    ds = _vgd(shapes_root, prompt_type='scribble')
    np.random.seed(0)
    assert all(set(ds[i]['vprompt_types']) == {'scribble'} for i in range(len(ds)))


def test_reads_the_tool_output(shapes_root, tmp_path):
    coco = COCO(osp.join(shapes_root, 'annotations', 'instances_val.json'))
    recs = build_vgd_records(coco, seed=5, prompt_params='scale_to_image')
    with open(tmp_path / 'vgd.json', 'w') as f:
        json.dump(recs, f)
    by_id = {r['image_id']: r for r in recs}
    ds = XSAMVGDSegDataset(ann_file=str(tmp_path / 'vgd.json'), data_prefix=dict(img=osp.join(shapes_root, 'images')),
                           prompt_type='box', test_mode=True,
                           category_file=osp.join(shapes_root, 'annotations', 'instances_val.json'))
    assert len(ds) == len(recs)
    names = {c['id']: c['name'] for c in coco.dataset['categories']}
    assert ds.metainfo['category_ids'] == tuple(sorted(names))
    assert ds.metainfo['category_names'] == tuple(names[c] for c in sorted(names))
    for idx in range(len(ds)):
        _check_sample(ds[idx], by_id)
    np.random.seed(0)
    train = XSAMVGDSegDataset(ann_file=str(tmp_path / 'vgd.json'), data_prefix=dict(img=''))
    for idx in range(len(train)):
        _check_sample(train[idx], by_id)


def test_interactive_one_sample_per_instance(shapes_root):
    raw = _load(shapes_root)
    by_id = {r['image_id']: r for r in raw}
    ds = XSAMInteractiveSegDataset(data_root=shapes_root, ann_file=VGD, data_prefix=dict(img='images'),
                                   prompt_type='point', test_mode=True)
    ann_ids = [a['id'] for r in raw for a in r['annotations']]
    assert len(ds) == len(ann_ids)
    seen = []
    for idx in range(len(ds)):
        s = ds[idx]
        _check_sample(s, by_id, task='intseg')
        assert len(s['vprompts']) == 1 and len(s['instances']) == 1 and s['instances'][0]['label'] == 0
        assert s['conversations'][0]['value'].count('<region>') == 1
        seen.append(s['vprompt_ann_ids'][0])
    assert seen == ann_ids


def test_negative_sampling_is_recorded_not_prompted(shapes_root):
    ds = _vgd(shapes_root, use_negative_sample=True, num_negative=2)
    all_cats = set(ds.metainfo['category_ids'])
    np.random.seed(0)
    sizes = []
    for _ in range(10):
        for idx in range(len(ds)):
            s = ds[idx]
            neg = s['negative_category_ids']
            assert not set(neg) & set(s['category_ids']) and set(neg) <= all_cats and len(set(neg)) == len(neg)
            assert len(s['vprompts']) == len(s['category_ids'])  # negatives get no slot here
            sizes.append(len(neg))
    assert set(sizes) == {0, 1, 2}
    ev = _vgd(shapes_root, use_negative_sample=True, prompt_type='mask', test_mode=True)
    assert ev[0]['negative_category_ids'] == []


def _bad_file(shapes_root, tmp_path, edit):
    raw = copy.deepcopy(_load(shapes_root))
    edit(raw)
    path = str(tmp_path / 'bad.json')
    with open(path, 'w') as f:
        json.dump(raw, f)
    return path


def test_bad_inputs(shapes_root, tmp_path):
    raw = _load(shapes_root)
    n_ann = sum(len(r['annotations']) for r in raw)
    with pytest.raises(ValueError, match='fixed prompt_type'):
        _vgd(shapes_root, test_mode=True)
    with pytest.raises(ValueError, match='prompt_type must be'):
        _vgd(shapes_root, prompt_type='polygon')

    def drop_box(data):
        del data[0]['annotations'][0]['visual_prompts']['box_visual_prompt']

    path = _bad_file(shapes_root, tmp_path, drop_box)
    with pytest.raises(ValueError, match='box_visual_prompt'):
        XSAMVGDSegDataset(ann_file=path, prompt_type='box', test_mode=True)
    ds = XSAMVGDSegDataset(ann_file=path, prompt_type='box', test_mode=True, skip_invalid=True)
    assert ds.skip_counts['missing_prompt'] == 1
    assert sum(len(ds[i]['instances']) for i in range(len(ds))) == n_ann - 1
    ok = XSAMVGDSegDataset(ann_file=path, prompt_type='point', test_mode=True)  # other types are fine
    assert ok.skip_counts['missing_prompt'] == 0

    # an empty prompt is never used, its instance stays a target (prompted by another instance)
    rec_idx = next(i for i, r in enumerate(raw) if len(r['annotations']) != len({a['category_id']
                                                                                 for a in r['annotations']}))
    rec = raw[rec_idx]
    cid = next(a['category_id'] for a in rec['annotations']
               if sum(b['category_id'] == a['category_id'] for b in rec['annotations']) > 1)
    first = next(a for a in rec['annotations'] if a['category_id'] == cid)
    h, w = rec['image_size']

    def empty_point(data):
        ann = next(a for a in data[rec_idx]['annotations'] if a['id'] == first['id'])
        ann['visual_prompts']['point_visual_prompt'] = encode_mask(np.zeros((h, w), np.uint8))
        crowd = dict(ann, id=-1, iscrowd=1)
        data[rec_idx]['annotations'].append(crowd)

    path = _bad_file(shapes_root, tmp_path, empty_point)
    ds = XSAMVGDSegDataset(ann_file=path, prompt_type='point', test_mode=True)
    assert ds.skip_counts['empty_prompt'] == 1 and ds.skip_counts['crowd'] == 1
    sample = next(ds[i] for i in range(len(ds)) if ds[i]['img_id'] == rec['image_id'])
    slot = sample['category_ids'].index(cid)
    assert sample['vprompt_ann_ids'][slot] != first['id']
    assert first['id'] in [t['ann_id'] for t in sample['instances'] if t['label'] == slot]
    assert -1 not in [t['ann_id'] for t in sample['instances']]
    intseg = XSAMInteractiveSegDataset(ann_file=path, prompt_type='point', test_mode=True)
    assert len(intseg) == n_ann - 1

    def no_prompts(data):
        for ann in data[0]['annotations']:
            ann['visual_prompts']['mask_visual_prompt'] = encode_mask(np.zeros((h, w), np.uint8))

    ds = XSAMVGDSegDataset(ann_file=_bad_file(shapes_root, tmp_path, no_prompts), prompt_type='mask', test_mode=True)
    assert ds.skip_counts['no_prompt'] == 1 and len(ds) == len(raw) - 1

    def bad_segm(data):
        data[0]['annotations'][0]['segmentation'] = encode_mask(np.ones((h + 1, w), np.uint8))

    path = _bad_file(shapes_root, tmp_path, bad_segm)
    with pytest.raises(ValueError, match='invalid segmentation'):
        XSAMVGDSegDataset(ann_file=path, prompt_type='mask', test_mode=True)
    assert XSAMVGDSegDataset(ann_file=path, prompt_type='mask', test_mode=True,
                             skip_invalid=True).skip_counts['invalid_annotation'] == 1


def test_through_the_annotation_loader(shapes_root):
    init_default_scope('mmdet')
    ds = _vgd(shapes_root, prompt_type='scribble', test_mode=True,
              pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadXSAMAnnotations')])
    out = ds[0]
    k = len(out['phrases'])
    assert out['gt_vprompt_masks'].masks.shape[0] == k and out['gt_vprompt_masks'].masks.any(axis=(1, 2)).all()
    assert set(out['gt_bboxes_labels'].tolist()) == set(range(k))


def test_hand_written_record_in_the_official_layout(tmp_path):
    """A record written by hand in the COCO-VGD layout (the released vgdseg_annotations): two instances of
    two categories, polygon segmentations, the four prompt keys as RLE."""
    import cv2
    h, w = 40, 60
    (tmp_path / 'img').mkdir()
    cv2.imwrite(str(tmp_path / 'img' / '000000000042.jpg'), np.zeros((h, w, 3), np.uint8))

    def rect(x0, y0, x1, y1):
        m = np.zeros((h, w), np.uint8)
        m[y0:y1, x0:x1] = 1
        return m

    def prompts(x0, y0, x1, y1):
        return dict(point_visual_prompt=encode_mask(rect(x0 + 2, y0 + 2, x0 + 5, y0 + 5)),
                    scribble_visual_prompt=encode_mask(rect(x0, y0 + 3, x1, y0 + 5)),
                    box_visual_prompt=encode_mask(rect(x0, y0, x1, y1)),
                    mask_visual_prompt=encode_mask(rect(x0 + 1, y0 + 1, x1 - 1, y1 - 1)))

    record = dict(image_file='000000000042.jpg', image_id=42, image_size=[h, w],
                  image_info=dict(id=42, file_name='000000000042.jpg', height=h, width=w),
                  annotations=[
                      dict(id=7, image_id=42, category_id=18, iscrowd=0, bbox=[2, 2, 20, 20], area=400,
                           segmentation=[[2, 2, 22, 2, 22, 22, 2, 22]], visual_prompts=prompts(2, 2, 22, 22)),
                      dict(id=8, image_id=42, category_id=1, iscrowd=0, bbox=[30, 10, 20, 20], area=400,
                           segmentation=[[30, 10, 50, 10, 50, 30, 30, 30]], visual_prompts=prompts(30, 10, 50, 30)),
                  ])
    (tmp_path / 'vgd.json').write_text(json.dumps([record]))
    ds = XSAMVGDSegDataset(data_root=str(tmp_path), ann_file='vgd.json', data_prefix=dict(img='img'),
                           prompt_type='box', test_mode=True, pipeline=[])
    assert len(ds) == 1
    info = ds.prepare_data(0)
    assert info['img_id'] == 42 and info['img_path'].endswith('img/000000000042.jpg')
    assert info['category_ids'] == [1, 18]  # sorted category ids at evaluation
    assert info['phrases'] == ['<region>', '<region>'] and info['vprompt_types'] == ['box', 'box']
    assert info['conversations'][0]['value'].count('<p><region></p>') == 2
    assert [inst['label'] for inst in info['instances']] == [0, 1]
    assert [inst['ann_id'] for inst in info['instances']] == [8, 7]
    box = decode_mask(info['vprompts'][0], h, w)  # category 1's box prompt
    assert box.sum() == 400 and box[10:30, 30:50].all()
