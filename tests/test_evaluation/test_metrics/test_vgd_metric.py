"""VGDMetric: equals an independent COCOeval, perfect synthetic predictions give AP 100, both GT layouts,
bad input, 1 vs 2 processes."""
import contextlib
import io
import json
import math
import os.path as osp
from functools import partial
from unittest import mock

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmxsam.evaluation.metrics.vgd_metric import STAT_NAMES, VGDMetric

from dist_helpers import run_distributed  # noqa: E402  (the shared 2-process scaffolding, beside this file)


LOG_TARGET = 'mmxsam.evaluation.metrics.vgd_metric.print_log'
H, W = 20, 30


# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------
def rle(mask):
    out = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    out['counts'] = out['counts'].decode('ascii')
    return out


def rect(y0, x0, y1, x1, h=H, w=W):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def make_sample(sample_idx, img_id, category_ids, masks, labels, scores, ptype='point', as_dict=True, size=(H, W)):
    meta = dict(sample_idx=sample_idx, img_id=img_id, category_ids=list(category_ids), ori_shape=size)
    if ptype is not None:
        meta['vprompt_types'] = [ptype] * len(category_ids)
    ds = DetDataSample(metainfo=meta)
    masks = torch.as_tensor(np.asarray(masks, dtype=bool).reshape(-1, *size))
    ds.pred_instances = InstanceData(masks=masks, labels=torch.as_tensor(labels, dtype=torch.long).reshape(-1),
                                     scores=torch.as_tensor(scores, dtype=torch.float32).reshape(-1))
    return ds.to_dict() if as_dict else ds


def hand_gt():
    """Plain COCO instances: images 1, 2 (20x30), 3 (16x16, no annotation), 4 (never evaluated)."""
    anns = [
        dict(image_id=1, category_id=3, segmentation=rle(rect(2, 2, 10, 12)), area=80, iscrowd=0),
        dict(image_id=1, category_id=3, segmentation=rle(rect(12, 15, 18, 28)), area=78, iscrowd=0),
        dict(image_id=1, category_id=7, segmentation=[[20.0, 1.0, 29.0, 1.0, 29.0, 9.0, 20.0, 9.0]], area=72,
             iscrowd=0),
        dict(image_id=1, category_id=7, segmentation=rle(rect(0, 0, 2, 30)), area=60, iscrowd=1),
        dict(image_id=2, category_id=7, segmentation=rle(rect(5, 5, 15, 25)), area=200, iscrowd=0),
        dict(image_id=4, category_id=3, segmentation=rle(rect(1, 1, 5, 5)), area=16, iscrowd=0),
    ]
    for k, ann in enumerate(anns):
        ann['id'] = 10 + k
        ann['bbox'] = list(mask_utils.toBbox(ann['segmentation'])) if isinstance(ann['segmentation'], dict) else \
            [20.0, 1.0, 9.0, 8.0]
    images = [dict(id=i, height=h, width=w, file_name=f'{i}.jpg') for i, h, w in
              ((1, H, W), (2, H, W), (3, 16, 16), (4, H, W))]
    return dict(images=images, annotations=anns,
                categories=[dict(id=3, name='a'), dict(id=7, name='b'), dict(id=9, name='c')])


def random_preds(rng, n, size=(H, W)):
    masks = []
    for _ in range(n):
        y0, x0 = int(rng.integers(0, size[0] - 3)), int(rng.integers(0, size[1] - 3))
        y1, x1 = int(rng.integers(y0 + 2, size[0] + 1)), int(rng.integers(x0 + 2, size[1] + 1))
        masks.append(rect(y0, x0, y1, x1, *size))
    return np.stack(masks) if masks else np.zeros((0, *size), bool)


def hand_samples(seed=0, as_dict=True):
    """(samples, expected detections per group) for two prompt types over images 1-3 (+ bad input)."""
    rng = np.random.default_rng(seed)
    gt = hand_gt()
    samples, expected = [], {'point': [], 'box': []}
    idx = 0
    for ptype in ('point', 'box'):
        for img_id, cats, size in ((1, [7, 3], (H, W)), (2, [7], (H, W)), (3, [3, 9], (16, 16))):
            masks = list(random_preds(rng, 4, size))
            # near-GT masks for the image's annotations (perturbed so AP is neither 0 nor 100)
            for ann in gt['annotations']:
                if ann['image_id'] == img_id and not ann['iscrowd'] and isinstance(ann['segmentation'], dict):
                    m = mask_utils.decode(dict(ann['segmentation'], counts=ann['segmentation']['counts'].encode()))
                    m = m.astype(bool)
                    m[int(rng.integers(0, size[0])), :] ^= True
                    masks.append(m)
            labels = rng.integers(0, len(cats), len(masks))
            scores = rng.random(len(masks))
            masks = np.stack(masks)
            if img_id == 1:  # a NaN score and an out-of-range label: dropped
                scores[0] = np.nan
                labels[1] = 5
            samples.append(make_sample(idx, img_id, cats, masks, labels, scores, ptype, as_dict=as_dict, size=size))
            for k in range(len(masks)):
                if np.isfinite(scores[k]) and 0 <= labels[k] < len(cats):
                    expected[ptype].append(dict(image_id=img_id, category_id=cats[labels[k]],
                                                segmentation=rle(masks[k]),
                                                score=float(np.float32(scores[k]))))
            idx += 1
    # an image id unknown to the GT: excluded
    samples.append(make_sample(idx, 99, [3], random_preds(rng, 2), [0, 0], [0.5, 0.6], 'point', as_dict=as_dict))
    return samples, expected


def independent_cocoeval(gt_file, dets, img_ids):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_file)
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, 'segm')
        ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [math.nan if v < 0 else 100.0 * v for v in ev.stats]


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def run_metric(metric, samples, batch_size=2):
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric.compute_metrics(metric.results)


@pytest.fixture
def gt_file(tmp_path):
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(hand_gt()))
    return str(path)


# ----------------------------------------------------------------------------------------------------
# numbers
# ----------------------------------------------------------------------------------------------------
def test_equals_independent_cocoeval_per_prompt_type(gt_file):
    samples, expected = hand_samples()
    with mock.patch(LOG_TARGET) as log:
        metrics = run_metric(VGDMetric(gt_file), samples)
    assert list(metrics)[:2] == ['AP', 'AP50']
    assert set(metrics) == {'AP', 'AP50'} | {f'{g}/{n}' for g in ('point', 'box') for n in STAT_NAMES}
    for group in ('point', 'box'):
        ref = independent_cocoeval(gt_file, expected[group], [1, 2, 3])
        got = [metrics[f'{group}/{n}'] for n in STAT_NAMES]
        assert all(same(a, b) for a, b in zip(got, ref)), (group, got, ref)
        assert 0 < got[0] < 100
    assert metrics['AP'] == pytest.approx((metrics['point/AP'] + metrics['box/AP']) / 2)
    assert math.isnan(metrics['point/APl'])  # no large object: COCOeval's -1 -> NaN
    messages = ' '.join(str(c.args[0]) for c in log.call_args_list)
    assert "group 'point': 1 sample(s) whose img_id is not in" in messages
    assert "'nonfinite_scores': 1, 'bad_labels': 1" in messages


def test_perfect_predictions_on_synthetic_vgd_give_100(shapes_root):
    from mmxsam.datasets import XSAMVGDSegDataset
    from mmxsam.datasets.utils import decode_mask
    samples, idx = [], 0
    for ptype in ('point', 'mask'):
        ds = XSAMVGDSegDataset(data_root=shapes_root, ann_file='vgd/vgd_val.json', data_prefix=dict(img='images'),
                               prompt_type=ptype, test_mode=True)
        for i in range(len(ds)):
            info = ds.prepare_data(i)
            h, w = info['height'], info['width']
            masks = np.stack([decode_mask(inst['mask'], h, w) for inst in info['instances']])
            labels = [inst['label'] for inst in info['instances']]
            sample = make_sample(idx, info['img_id'], info['category_ids'], masks, labels, [1.0] * len(labels),
                                 None, size=(h, w))
            sample['vprompt_types'] = info['vprompt_types']
            samples.append(sample)
            idx += 1
    metric = VGDMetric(osp.join(shapes_root, 'vgd/vgd_val.json'))
    metric.dataset_meta = ds.metainfo
    metrics = run_metric(metric, samples)
    for key in ('AP', 'AP50', 'point/AP', 'point/AP50', 'point/AP75', 'mask/AP', 'mask/AR100'):
        assert metrics[key] == 100.0, key


def test_vgd_layout_and_coco_layout_agree(shapes_root):
    """The synthetic VGD file and the COCO instances file of the same split give the same numbers."""
    from mmxsam.datasets import XSAMVGDSegDataset
    from mmxsam.datasets.utils import decode_mask
    ds = XSAMVGDSegDataset(data_root=shapes_root, ann_file='vgd/vgd_val.json', data_prefix=dict(img='images'),
                           prompt_type='box', test_mode=True)
    rng = np.random.default_rng(5)
    samples = []
    for i in range(len(ds)):
        info = ds.prepare_data(i)
        size = (info['height'], info['width'])
        k = len(info['category_ids'])
        shifted = [np.roll(decode_mask(inst['mask'], *size), int(rng.integers(0, 8)), axis=1)
                   for inst in info['instances']]  # near-GT, some of them with a wrong slot label
        masks = np.concatenate([np.stack(shifted), random_preds(rng, 3, size)])
        labels = [inst['label'] if rng.random() < 0.7 else int(rng.integers(0, k)) for inst in info['instances']]
        labels += rng.integers(0, k, 3).tolist()
        samples.append(make_sample(i, info['img_id'], info['category_ids'], masks, labels, rng.random(len(masks)),
                                   'box', size=size))
    vgd = run_metric(VGDMetric(osp.join(shapes_root, 'vgd/vgd_val.json')), samples)
    coco = run_metric(VGDMetric(osp.join(shapes_root, 'annotations/instances_val.json')), samples)
    assert all(same(vgd[k], coco[k]) for k in vgd) and vgd.keys() == coco.keys()
    assert 0 < vgd['box/AP'] < 100 and vgd['box/AR100'] > 0


def test_empty_predictions_and_images_without_gt(gt_file):
    samples = [make_sample(0, 1, [7, 3], np.zeros((0, H, W), bool), [], [], 'point'),
               make_sample(1, 3, [3], np.zeros((0, 16, 16), bool), [], [], 'point', size=(16, 16)),
               make_sample(2, 3, [3], random_preds(np.random.default_rng(0), 1, (16, 16)), [0], [0.9], 'box',
                           size=(16, 16))]
    metrics = run_metric(VGDMetric(gt_file), samples)
    assert metrics['point/AP'] == 0.0 and metrics['point/AR100'] == 0.0  # GT but no detection: 0, not NaN
    assert math.isnan(metrics['box/AP'])  # only an image without GT: nothing defined


def test_no_results_and_no_group_key(gt_file):
    with mock.patch(LOG_TARGET) as log:
        metrics = VGDMetric(gt_file).compute_metrics([])
    assert list(metrics) == ['AP', 'AP50'] and all(math.isnan(v) for v in metrics.values())
    assert 'no results' in log.call_args.args[0]
    samples, _ = hand_samples()
    for s in samples:
        s.pop('vprompt_types')
    metrics = run_metric(VGDMetric(gt_file), samples[:3])
    assert 'all/AP' in metrics and metrics['AP'] == metrics['all/AP']


def test_group_of():
    assert VGDMetric.group_of(['box', 'box']) == 'box'
    assert VGDMetric.group_of(['box', 'point']) == 'mixed'
    assert VGDMetric.group_of('scribble') == 'scribble'
    assert VGDMetric.group_of(None) == VGDMetric.group_of([]) == 'all'


def test_results_hold_rles_and_duplicates_dropped(gt_file):
    samples, _ = hand_samples()
    metric = VGDMetric(gt_file)
    metric.process({}, samples[:1])
    (result, ) = metric.results
    assert result['size'] == (H, W) and result['num_nonfinite'] == 1 and result['num_bad_label'] == 1
    assert all(isinstance(c, str) and isinstance(s, float) for _, s, c in result['dets'])
    clean = run_metric(VGDMetric(gt_file), samples)
    padded = run_metric(VGDMetric(gt_file), samples + samples[:2])
    assert all(same(clean[k], padded[k]) for k in clean)


def test_repeated_image_in_group_keeps_first(gt_file):
    samples, _ = hand_samples()
    first = run_metric(VGDMetric(gt_file), samples[:3])
    other = make_sample(50, 1, [7, 3], random_preds(np.random.default_rng(1), 3), [0, 1, 0], [0.9, 0.8, 0.7])
    with mock.patch(LOG_TARGET) as log:
        metrics = run_metric(VGDMetric(gt_file), samples[:3] + [other])
    assert all(same(first[k], metrics[k]) for k in first)
    assert 'repeat an image already evaluated' in ' '.join(str(c.args[0]) for c in log.call_args_list)


def test_bad_input_raises(gt_file, tmp_path):
    metric = VGDMetric(gt_file)
    with pytest.raises(ValueError, match='differs from ori_shape'):
        sample = make_sample(0, 1, [3], np.zeros((1, H, W), bool), [0], [0.5])
        sample['ori_shape'] = (H + 1, W)
        metric.process({}, [sample])
    with pytest.raises(ValueError, match='masks must be binary'):
        sample = make_sample(0, 1, [3], np.zeros((1, H, W), bool), [0], [0.5])
        sample['pred_instances']['masks'] = torch.full((1, H, W), 0.5)
        metric.process({}, [sample])
    with pytest.raises(KeyError, match='category_ids'):
        sample = make_sample(0, 1, [3], np.zeros((1, H, W), bool), [0], [0.5])
        del sample['category_ids']
        metric.process({}, [sample])
    metric = VGDMetric(gt_file)
    sample = make_sample(0, 3, [3], np.zeros((1, H, W), bool), [0], [0.5])  # image 3 is 16x16 in the GT
    metric.process({}, [sample])
    with pytest.raises(ValueError, match=r'mask size \(20, 30\) differs from the size \(16, 16\) of image 3'):
        metric.compute_metrics(metric.results)
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(foo=1)))
    with pytest.raises(ValueError, match='COCO-VGD layout'):
        VGDMetric(str(bad)).compute_metrics([dict(sample_idx=0, img_id=1, group='all', size=(H, W), dets=[],
                                                  num_nonfinite=0, num_bad_label=0)])


def test_registry_and_evaluator(gt_file):
    metric = METRICS.build(dict(type='VGDMetric', ann_file=gt_file))
    samples, _ = hand_samples(as_dict=False)
    evaluator = Evaluator(metric)
    evaluator.process(samples)
    metrics = evaluator.evaluate(len(samples))
    assert 'vgd/AP' in metrics and 'vgd/point/AP50' in metrics


# ----------------------------------------------------------------------------------------------------
# 1 vs 2 processes
# ----------------------------------------------------------------------------------------------------
def _evaluate(indices, gt_file, collect_dir):
    samples, _ = hand_samples(seed=3)
    evaluator = Evaluator(VGDMetric(gt_file, collect_dir=collect_dir))
    for start in range(0, len(indices), 2):
        evaluator.process([samples[i] for i in indices[start:start + 2]])
    return evaluator.evaluate(len(samples))


def _evaluate_shard(indices, collect_dir, gt_file):
    return _evaluate(indices, gt_file, collect_dir)


def test_one_and_two_processes_give_identical_metrics(gt_file, tmp_path):
    num = len(hand_samples(seed=3)[0])  # 7: rank 1 pads with a repeat of sample 0
    assert num % 2 == 1
    single = _evaluate(list(range(num)), gt_file, None)
    parts = run_distributed(partial(_evaluate_shard, gt_file=gt_file), num, tmp_path)
    assert parts[1]['indices'][-1] == 0
    for part in parts:
        assert part['metrics'].keys() == single.keys()
        assert all(same(part['metrics'][k], single[k]) for k in single)
    assert 0 < single['vgd/point/AP'] < 100


def test_packed_samples_carry_what_the_metric_needs(shapes_root, tiny_tokenizer_dir):
    """Data set -> PackXSAMInputs keeps img_id, ori_shape, category_ids and vprompt_types in the metainfo."""
    from mmengine.registry import init_default_scope

    from mmxsam.datasets import XSAMVGDSegDataset
    from mmxsam.datasets.utils import decode_mask
    init_default_scope('mmdet')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadXSAMAnnotations'),
                dict(type='XSAMResize', scale=(64, 64), keep_ratio=True),
                dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tiny_tokenizer_dir), max_length=256)]
    ds = XSAMVGDSegDataset(data_root=shapes_root, ann_file='vgd/vgd_val.json', data_prefix=dict(img='images'),
                           prompt_type='scribble', test_mode=True, pipeline=pipeline)
    samples = []
    for i in range(4):
        sample = ds[i]['data_samples']
        record = ds.get_data_info(i)
        h, w = sample.metainfo['ori_shape']
        assert sample.metainfo['vprompt_types'] == ['scribble'] * len(sample.metainfo['category_ids'])
        by_cat = {cid: k for k, cid in enumerate(sample.metainfo['category_ids'])}
        masks = np.stack([decode_mask(o['mask'], h, w) for o in record['objects']])
        labels = [by_cat[o['category_id']] for o in record['objects']]
        sample.pred_instances = InstanceData(masks=torch.from_numpy(masks), labels=torch.tensor(labels),
                                             scores=torch.ones(len(labels)))
        samples.append(sample)
    evaluator = Evaluator(VGDMetric(osp.join(shapes_root, 'vgd/vgd_val.json')))
    evaluator.process(samples)
    metrics = evaluator.evaluate(len(samples))
    assert metrics['vgd/scribble/AP'] == 100.0 and metrics['vgd/AP'] == 100.0
