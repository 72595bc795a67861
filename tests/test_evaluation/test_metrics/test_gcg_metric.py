"""GCGMetric: caption cleaning, GLaMM mIoU matching, AP vs an independent COCOeval, METEOR/CIDEr vs
pycocoevalcap called directly, perfect predictions on the synthetic val_test files, 1 vs 2 processes."""
import json
import math
import os.path as osp
import pickle
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

from mmxsam.evaluation.metrics.gcg_metric import GCGMetric, clean_caption, extract_phrases, greedy_iou_matching

from dist_helpers import run_distributed  # noqa: E402  (the shared 2-process scaffolding, beside this file)


LOG_TARGET = 'mmxsam.evaluation.metrics.gcg_metric.print_log'
MASK_ONLY = dict(caption_metrics=())  # no JVM


# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------
def rle(mask):
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in r['size']], counts=r['counts'].decode('ascii'))


def write_gt(tmp_path, images, anns, captions):
    """images: [(id, h, w)]; anns: [(image_id, mask)]; captions: {id: [caption, ...]} -> (mask, caption) files."""
    imgs = [dict(id=i, file_name=f'{i}.jpg', height=h, width=w) for i, h, w in images]
    mask_gt = dict(images=imgs, categories=[dict(id=1, name='object')],
                   annotations=[dict(id=k + 1, image_id=i, category_id=1, segmentation=rle(m), area=float(m.sum()),
                                     bbox=mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m.astype(np.uint8))))
                                     .tolist(), iscrowd=0) for k, (i, m) in enumerate(anns)])
    cap_gt = dict(images=imgs, annotations=[dict(id=k + 1, image_id=i, caption=c) for k, (i, cs) in
                                            enumerate(captions.items()) for c in cs])
    mask_file, cap_file = str(tmp_path / 'val_gcg_coco_mask_gt.json'), str(tmp_path / 'val_gcg_coco_caption_gt.json')
    with open(mask_file, 'w') as f:
        json.dump(mask_gt, f)
    with open(cap_file, 'w') as f:
        json.dump(cap_gt, f)
    return mask_file, cap_file


def make_sample(img_id, text, masks=None, labels=None, scores=None, as_dict=True):
    ds = DetDataSample(metainfo=dict(img_id=img_id))
    ds.pred_text = text
    if masks is not None:
        masks = torch.as_tensor(np.asarray(masks, dtype=bool))
        k = masks.shape[0]
        ds.pred_instances = InstanceData(
            masks=masks, labels=torch.as_tensor(labels if labels is not None else list(range(k)), dtype=torch.long),
            scores=torch.as_tensor(scores if scores is not None else [0.9] * k, dtype=torch.float32))
    return ds.to_dict() if as_dict else ds


def box(h, w, r0, r1, c0, c1):
    m = np.zeros((h, w), bool)
    m[r0:r1, c0:c1] = True
    return m


def run(metric, samples, batch_size=2):
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric.compute_metrics(metric.results)


# ----------------------------------------------------------------------------------------------------
# text
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('text, expected', [
    ('<p>a red circle</p> is next to <p>the sky</p>. And <SEG>.', 'a red circle is next to the sky.'),
    ('<p>A cat</p> sits on <p>a mat</p>. It is <p>black</p>. The segmentation mask is <SEG>.<|end|>',
     'A cat sits on a mat. It is black.'),
    ('<p>two  blue\nsquares</p>   in front of <p>the grass</p> <SEG>', ''),  # the only sentence holds <SEG>
    ('A picture of <p>a dog</p> . And the segmentation mask is <SEG> .', 'A picture of a dog.'),
    ("'<p>a tree</p> by the lake. <SEG>.'", 'a tree by the lake.'),  # outer quotes stripped
    ('A cat on a mat.', 'A cat on a mat.'),  # no <SEG>: kept by default
    ('', ''),
    (None, ''),
])
def test_clean_caption(text, expected):
    assert clean_caption(text) == expected


def test_clean_caption_without_seg_xsam_option():
    assert clean_caption('A cat on a mat.', drop_without_seg=True) == ''
    assert clean_caption('A cat. <SEG>.', drop_without_seg=True) == 'A cat.'
    assert clean_caption('A cat. [SEG].', seg_token='[SEG]') == 'A cat.'


def test_extract_phrases_in_order():
    text = '<p>a red circle</p> is next to <p> the  sky </p>. And <SEG>.'
    assert extract_phrases(text) == ['a red circle', 'the sky']
    assert extract_phrases('<p>a <region> thing</p> and <p>an unclosed one') == ['a thing', 'an unclosed one']
    assert extract_phrases('no phrases <SEG>.') == [] and extract_phrases(None) == []


# ----------------------------------------------------------------------------------------------------
# mIoU
# ----------------------------------------------------------------------------------------------------
def test_greedy_matching_is_glamms_not_hungarian():
    # greedy takes 0.9 first and is left with 0.1; the optimal assignment would be 0.8 + 0.85
    assert greedy_iou_matching([[0.9, 0.8], [0.85, 0.1]]) == [(0, 0, 0.9), (1, 1, 0.1)]
    # ties: first in row-major order; zero IoU pairs are never matched; extra rows stay unmatched
    assert greedy_iou_matching([[0.5, 0.5], [0.5, 0.0], [0.0, 0.0]]) == [(0, 0, 0.5)]
    assert greedy_iou_matching([[0.0, 0.3], [0.3, 0.0]]) == [(0, 1, 0.3), (1, 0, 0.3)]
    assert greedy_iou_matching(np.zeros((0, 3))) == [] and greedy_iou_matching(np.zeros((2, 2))) == []


def test_miou_on_hand_made_masks(tmp_path):
    h = w = 10
    gt_a, gt_b = box(h, w, 0, 5, 0, 10), box(h, w, 5, 10, 0, 5)  # 50 and 25 pixels
    p1 = box(h, w, 0, 5, 0, 10)   # IoU(p1, A) = 1,   IoU(p1, B) = 0
    p2 = box(h, w, 5, 10, 0, 10)  # IoU(p2, A) = 0,   IoU(p2, B) = 25/50
    p3 = box(h, w, 0, 10, 0, 5)   # IoU(p3, A) = 25/75, IoU(p3, B) = 25/50 (tie with p2: p2 comes first)
    mask_file, _ = write_gt(tmp_path, [('a', h, w), ('b', h, w), ('c', h, w)],
                            [('a', gt_a), ('a', gt_b), ('b', gt_a), ('c', gt_b)], {})
    samples = [make_sample('a', '<p>x</p> <p>y</p> <p>z</p> <SEG>.', [p1, p2, p3]),
               # 'b' has no prediction at all; 'c' predicts a mask that misses its ground truth
               make_sample('c', '<p>x</p> <SEG>.', [box(h, w, 0, 2, 8, 10)])]
    metric = GCGMetric(mask_file, **MASK_ONLY)
    metrics = run(metric, samples)
    # image a: pairs (p1, A) = 1.0 then (p2, B) = 0.5 -> 0.75; strict: 1.5 / max(3, 2)
    # image b: no prediction -> 0; image c: no overlap -> 0
    assert metrics['mIoU'] == pytest.approx(100.0 * (0.75 + 0 + 0) / 3, rel=1e-12)
    assert metrics['mIoU_strict'] == pytest.approx(100.0 * (1.5 / 3 + 0 + 0) / 3, rel=1e-12)
    assert metric.stats['missing_images'] == 1 and metric.stats['gt_images'] == 3


# ----------------------------------------------------------------------------------------------------
# AP
# ----------------------------------------------------------------------------------------------------
def random_gcg(tmp_path, num_images=6, seed=0, size=(24, 32)):
    """Ground-truth files and predictions (as data samples) with random rectangles, string image ids."""
    rng = np.random.default_rng(seed)
    h, w = size
    images, anns, preds = [], [], []
    for i in range(num_images):
        img_id = f'sa_{i:03d}'
        images.append((img_id, h, w))
        gts = []
        for _ in range(int(rng.integers(1, 4))):
            r0, c0 = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
            gts.append(box(h, w, r0, r0 + int(rng.integers(3, 7)), c0, c0 + int(rng.integers(3, 7))))
            anns.append((img_id, gts[-1]))
        masks = []
        for g in gts:  # a shifted copy of some ground-truth masks plus random extras
            if rng.random() < 0.7:
                masks.append(np.roll(g, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1)))
        for _ in range(int(rng.integers(0, 2))):
            r0, c0 = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
            masks.append(box(h, w, r0, r0 + 5, c0, c0 + 5))
        if i == num_images - 1:
            masks = []  # an image the model did not segment
        text = ' '.join(f'<p>thing {k}</p>' for k in range(len(masks))) + ' in a picture. <SEG>.'
        preds.append((img_id, text, masks))
    mask_file, cap_file = write_gt(tmp_path, images, anns, {i: [f'a picture {k}'] for k, (i, _, _) in
                                                            enumerate(images)})
    return mask_file, cap_file, preds


def independent_cocoeval(mask_file, preds):
    """GLaMM's evaluate.py AP: COCO(gt file), loadRes(one entry per mask, category 1, score 1.0), segm."""
    coco_gt = COCO(mask_file)
    dets = [dict(image_id=i, category_id=1, segmentation=rle(m), score=1.0) for i, _, masks in preds for m in masks]
    coco_eval = COCOeval(coco_gt, coco_gt.loadRes(dets), 'segm')
    coco_eval.params.catIds = [1]
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return 100.0 * coco_eval.stats[0], 100.0 * coco_eval.stats[1]


def test_ap_equals_independent_cocoeval(tmp_path):
    mask_file, _, preds = random_gcg(tmp_path, num_images=8, seed=1)
    ap, ap50 = independent_cocoeval(mask_file, preds)
    metric = GCGMetric(mask_file, **MASK_ONLY)
    metrics = run(metric, [make_sample(i, t, m if m else None) for i, t, m in preds])
    assert 0 < ap50 < 100 and 0 < ap < ap50  # a non-trivial case
    assert metrics['AP50'] == ap50 and metrics['AP'] == ap
    assert list(metrics) == ['AP50', 'mIoU', 'AP', 'mIoU_strict']


def test_no_predicted_mask_gives_ap_0_and_miou_0(tmp_path):
    mask_file, cap_file, preds = random_gcg(tmp_path, num_images=3, seed=2)
    metric = GCGMetric(mask_file, cap_file, caption_metrics=('CIDEr', ))
    metrics = run(metric, [make_sample(i, '', None) for i, _, _ in preds])  # nothing generated, no mask
    assert metrics == dict(CIDEr=0.0, AP50=0.0, mIoU=0.0, AP=0.0, mIoU_strict=0.0)
    assert metric.stats['masks'] == 0 and metric.stats['missing_images'] == 0


def test_empty_results_warn_and_give_nan(tmp_path):
    mask_file, cap_file, _ = random_gcg(tmp_path, num_images=2)
    metric = GCGMetric(mask_file, cap_file, caption_metrics=('CIDEr', ))
    with mock.patch(LOG_TARGET) as log:
        metrics = metric.compute_metrics([])
    assert list(metrics) == ['CIDEr', 'AP50', 'mIoU', 'AP', 'mIoU_strict']
    assert all(math.isnan(v) for v in metrics.values())
    assert 'no results' in log.call_args.args[0]


# ----------------------------------------------------------------------------------------------------
# phrase alignment, stored results, mask modes
# ----------------------------------------------------------------------------------------------------
def test_results_keep_rles_with_their_phrases(tmp_path):
    h, w = 8, 8
    a, b, c = box(h, w, 0, 4, 0, 4), box(h, w, 4, 8, 4, 8), box(h, w, 0, 2, 6, 8)
    metric = GCGMetric(str(tmp_path / 'unused.json'), **MASK_ONLY)
    # labels out of order: the stored masks follow phrase order, each with its phrase text; label 2 has no phrase
    metric.process({}, [make_sample(7, '<p>the sky</p> above <p>a red circle</p>. <SEG>.', [b, a, c],
                                    labels=[1, 0, 2], scores=[0.5, 0.8, 0.1])])
    (img_id, caption, phrases, masks), = metric.results
    assert img_id == 7 and caption == 'the sky above a red circle.' and phrases == ['the sky', 'a red circle']
    assert [(m[0], m[1], round(m[2], 4)) for m in masks] == [(0, 'the sky', 0.8), (1, 'a red circle', 0.5),
                                                             (2, None, 0.1)]
    for (_, _, _, r), expected in zip(masks, [a, b, c]):
        assert isinstance(r['counts'], str) and r['size'] == [h, w]
        assert np.array_equal(mask_utils.decode(dict(size=r['size'], counts=r['counts'].encode())), expected)
    pickle.dumps(metric.results)  # what mmengine's collect_results moves between ranks


def test_alignment_counts_and_outfile(tmp_path):
    h, w = 8, 8
    mask_file, _ = write_gt(tmp_path, [(1, h, w)], [(1, box(h, w, 0, 4, 0, 4))], {})
    metric = GCGMetric(mask_file, outfile_prefix=str(tmp_path / 'run'), **MASK_ONLY)
    metrics = run(metric, [make_sample(1, '<p>a</p>, <p>b</p> and <p>c</p>. <SEG>.',
                                       [box(h, w, 0, 4, 0, 4), box(h, w, 4, 8, 0, 4)], labels=[0, 3])])
    # COCOeval's precision tp / (tp + fp + eps) makes a single true positive score 1 - 2e-16
    assert metrics['mIoU'] == 100.0 and metrics['AP50'] == pytest.approx(100.0, abs=1e-9)
    assert metric.stats['masks_without_phrase'] == 1 and metric.stats['phrases_without_mask'] == 2
    dumped = json.load(open(tmp_path / 'run.gcg_predictions.json'))
    assert dumped[0]['image_id'] == 1 and dumped[0]['phrases'] == ['a', 'b', 'c']
    assert [(m['label'], m['phrase']) for m in dumped[0]['masks']] == [(0, 'a'), (3, None)]


def test_label_map_mode_paints_like_xsam(tmp_path):
    h, w = 6, 6
    big, small, hidden = box(h, w, 0, 6, 0, 6), box(h, w, 0, 2, 0, 2), box(h, w, 0, 1, 0, 1)
    metric = GCGMetric(str(tmp_path / 'unused.json'), mask_mode='label_map', **MASK_ONLY)
    # later phrases overwrite earlier ones: small is painted over big, hidden over small; the empty
    # mask of phrase 3 disappears
    metric.process({}, [make_sample(0, '<p>a</p> <p>b</p> <p>c</p> <p>d</p> <SEG>.',
                                    [big, small, hidden, np.zeros((h, w), bool)])])
    masks = metric.results[0][3]
    decoded = [mask_utils.decode(dict(size=m[3]['size'], counts=m[3]['counts'].encode())).astype(bool) for m in masks]
    assert [m[0] for m in masks] == [0, 1, 2]  # area order: 36 - 4, 4 - 1, 1
    assert np.array_equal(decoded[0], big & ~small) and np.array_equal(decoded[1], small & ~hidden)
    assert np.array_equal(decoded[2], hidden) and [m[1] for m in masks] == ['a', 'b', 'c']


# ----------------------------------------------------------------------------------------------------
# bookkeeping and bad input
# ----------------------------------------------------------------------------------------------------
def test_missing_unknown_and_duplicate_images(tmp_path):
    mask_file, _, preds = random_gcg(tmp_path, num_images=4, seed=3)
    samples = [make_sample(i, t, m if m else None) for i, t, m in preds]
    clean = run(GCGMetric(mask_file, **MASK_ONLY), list(samples))
    # a padded repeat (same content), a conflicting repeat, and an image id the ground truth does not have
    extra = [samples[0], make_sample(preds[1][0], 'other <SEG>.', None), make_sample('not_in_gt', 'x <SEG>.', None)]
    metric = GCGMetric(mask_file, **MASK_ONLY)
    with mock.patch(LOG_TARGET) as log:
        metrics = run(metric, samples + extra)
    assert metrics == clean
    messages = ' '.join(str(c.args[0]) for c in log.call_args_list)
    assert 'dropped 2 repeated result(s)' in messages and '1 of the dropped repeats differ' in messages
    assert "1 prediction(s) for image ids that are in neither ground-truth file" in messages
    assert metric.stats['unknown_images'] == 1 and metric.stats['duplicates'] == 2
    # leaving one image out scores it as empty
    metric = GCGMetric(mask_file, **MASK_ONLY)
    with mock.patch(LOG_TARGET) as log:
        run(metric, samples[1:])
    assert metric.stats['missing_images'] == 1
    assert any('have no prediction and are scored as empty' in str(c.args[0]) for c in log.call_args_list)


def test_bad_inputs_raise(tmp_path):
    h, w = 8, 8
    mask_file, _ = write_gt(tmp_path, [(1, h, w)], [(1, box(h, w, 0, 4, 0, 4))], {})
    metric = GCGMetric(mask_file, **MASK_ONLY)
    metric.process({}, [make_sample(1, '<p>a</p> <SEG>.', [box(h, w + 1, 0, 4, 0, 4)])])
    with pytest.raises(ValueError, match=r'img_id=1: predicted mask size \(8, 9\) differs .* \(8, 8\)'):
        metric.compute_metrics(metric.results)
    sample = make_sample(1, '<SEG>.')
    del sample['pred_text']
    with pytest.raises(KeyError, match='pred_text'):
        GCGMetric(mask_file, **MASK_ONLY).process({}, [sample])
    sample = make_sample(1, '<SEG>.')
    del sample['img_id']
    with pytest.raises(KeyError, match='img_id'):
        GCGMetric(mask_file, **MASK_ONLY).process({}, [sample])
    bad = make_sample(1, '<p>a</p> <SEG>.')
    bad['pred_instances'] = dict(masks=torch.full((1, h, w), 0.5), labels=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match='must be binary'):
        GCGMetric(mask_file, **MASK_ONLY).process({}, [bad])
    with pytest.raises(ValueError, match='caption_metrics'):
        GCGMetric(mask_file, caption_metrics=('BLEU', ))
    with pytest.raises(ValueError, match='caption_ann_file'):
        GCGMetric(mask_file, caption_metrics=('CIDEr', )).compute_metrics([(1, '', [], [])])


def test_missing_caption_dependencies_are_named():
    with mock.patch('mmxsam.evaluation.metrics.gcg_metric.shutil.which', return_value=None):
        with pytest.raises(RuntimeError, match="Java runtime .*'java' on PATH"):
            GCGMetric('x.json', 'y.json')
        GCGMetric('x.json', caption_metrics=())  # mask metrics alone need neither
    with mock.patch('mmxsam.evaluation.metrics.gcg_metric.importlib.import_module',
                    side_effect=ImportError('No module named pycocoevalcap')):
        with pytest.raises(ImportError, match='pip install pycocoevalcap==1.2'):
            GCGMetric('x.json', 'y.json')


# ----------------------------------------------------------------------------------------------------
# captions (Java: PTBTokenizer + METEOR 1.5)
# ----------------------------------------------------------------------------------------------------
def direct_caption_scores(gt_captions, pred_captions):
    """What COCOEvalCap does: tokenize references and predictions separately, then score."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [dict(caption=c) for c in cs] for i, cs in gt_captions.items()})
    res = tokenizer.tokenize({i: [dict(caption=pred_captions.get(i, ''))] for i in gt_captions})
    meteor = Meteor()
    meteor_score, meteor_scores = meteor.compute_score(gts, res)
    del meteor
    cider_score, _ = Cider().compute_score(gts, res)
    return 100.0 * meteor_score, 100.0 * cider_score, meteor_scores


def test_caption_metrics_match_pycocoevalcap(tmp_path):
    h, w = 8, 8
    captions = {1: ['A red circle is next to the sky.'],
                2: ['Two blue squares in front of the grass.', 'two squares on grass'],
                3: ['A picture of a green triangle and the sea.'],
                4: ['The wall behind a yellow star.']}
    generated = {1: '<p>A red circle</p> is next to <p>the sky</p>. And <SEG>.',  # identical after cleaning
                 2: 'Two <p>blue squares</p> on <p>the grass</p>. The segmentation mask is <SEG>.',
                 3: 'A picture of <p>a triangle</p>. It is green.\nAnd <SEG>.'}  # image 4: no prediction
    mask_file, cap_file = write_gt(tmp_path, [(i, h, w) for i in captions], [(i, box(h, w, 0, 4, 0, 4))
                                                                               for i in captions], captions)
    metric = GCGMetric(mask_file, cap_file)
    metrics = run(metric, [make_sample(i, t, None) for i, t in generated.items()])
    meteor, cider, per_image = direct_caption_scores(captions, {i: clean_caption(t) for i, t in generated.items()})
    assert list(metrics)[:2] == ['METEOR', 'CIDEr']
    assert metrics['METEOR'] == pytest.approx(meteor, rel=1e-12) and metrics['CIDEr'] == pytest.approx(cider, rel=1e-12)
    assert per_image[0] == pytest.approx(1.0) and per_image[3] == 0.0  # identical caption; missing image
    assert 0 < metrics['METEOR'] < 100 and metrics['CIDEr'] > 0


# ----------------------------------------------------------------------------------------------------
# perfect predictions on the synthetic val_test ground truth
# ----------------------------------------------------------------------------------------------------
def perfect_samples(shapes_root, as_dict=True):
    """Per val image: the ground-truth caption with its phrases tagged and <SEG> appended (from GranD-f),
    and the ground-truth masks in phrase order."""
    from mmxsam.datasets.gcg_seg_dataset import tag_caption
    root = osp.join(shapes_root, 'gcg')
    grandf = {r['image_id']: r for r in json.load(open(osp.join(root, 'grandf_gcg_val.json')))}
    mask_gt = json.load(open(osp.join(root, 'val_test', 'val_gcg_coco_mask_gt.json')))
    samples = []
    for img in mask_gt['images']:
        rec = grandf[img['id']]
        groundings = sorted(rec['groundings'].items(), key=lambda kv: kv[1]['token_positives'][0])
        text = tag_caption(rec['caption'], [g['token_positives'] for _, g in groundings]) + ' And <SEG>.'
        masks = [mask_utils.decode(dict(size=g['rle_masks'][0]['size'],
                                        counts=g['rle_masks'][0]['counts'].encode())) for _, g in groundings]
        samples.append(make_sample(img['id'], text, masks, as_dict=as_dict))
    return samples, mask_gt


def test_perfect_predictions_on_synthetic_val_test(shapes_root):
    root = osp.join(shapes_root, 'gcg', 'val_test')
    samples, mask_gt = perfect_samples(shapes_root)
    metric = GCGMetric(osp.join(root, 'val_gcg_coco_mask_gt.json'), osp.join(root, 'val_gcg_coco_caption_gt.json'))
    metrics = run(metric, samples)
    assert metrics['AP50'] == pytest.approx(100.0, abs=1e-9) and metrics['AP'] == pytest.approx(100.0, abs=1e-9)
    assert metrics['mIoU'] == 100.0 and metrics['mIoU_strict'] == 100.0
    assert metrics['METEOR'] == pytest.approx(100.0, abs=0.5)
    caption_gt = json.load(open(osp.join(root, 'val_gcg_coco_caption_gt.json')))
    gt_caps = {a['image_id']: [a['caption']] for a in caption_gt['annotations']}
    pred_caps = {s['img_id']: clean_caption(s['pred_text']) for s in samples}
    meteor, cider, _ = direct_caption_scores(gt_caps, pred_caps)
    assert metrics['METEOR'] == pytest.approx(meteor, rel=1e-12) and metrics['CIDEr'] == pytest.approx(cider, rel=1e-12)
    assert metric.stats['gt_images'] == len(mask_gt['images']) == metric.stats['predicted_images']
    assert metric.stats['masks_without_phrase'] == 0 and metric.stats['phrases_without_mask'] == 0


# ----------------------------------------------------------------------------------------------------
# OpenMMLab plumbing: registry, dataset metainfo, 1 vs 2 processes
# ----------------------------------------------------------------------------------------------------
def test_registry_and_dataset_meta_paths(tmp_path):
    mask_file, _, preds = random_gcg(tmp_path, num_images=3, seed=4)
    metric = METRICS.build(dict(type='GCGMetric', caption_metrics=()))
    assert isinstance(metric, GCGMetric) and metric.prefix == 'gcg'
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = dict(mask_gt_file=mask_file, caption_gt_file=None)
    evaluator.process([make_sample(i, t, m if m else None, as_dict=False) for i, t, m in preds])
    metrics = evaluator.evaluate(len(preds))
    assert set(metrics) == {'gcg/AP50', 'gcg/mIoU', 'gcg/AP', 'gcg/mIoU_strict'}
    assert metrics['gcg/AP50'] == independent_cocoeval(mask_file, preds)[1]


NUM_DIST_IMAGES = 7  # odd: DefaultSampler pads rank 1 with a repeat of image 0


def _evaluate(indices, size, gt_dir, collect_dir):
    mask_file = osp.join(gt_dir, 'val_gcg_coco_mask_gt.json')
    cap_file = osp.join(gt_dir, 'val_gcg_coco_caption_gt.json')
    preds = pickle.load(open(osp.join(gt_dir, 'preds.pkl'), 'rb'))
    evaluator = Evaluator(GCGMetric(mask_file, cap_file, caption_metrics=('CIDEr', ), collect_dir=collect_dir))
    for start in range(0, len(indices), 2):
        batch = [preds[i] for i in indices[start:start + 2]]
        evaluator.process([make_sample(i, t, m if m else None, as_dict=False) for i, t, m in batch])
    return evaluator.evaluate(size)


def _evaluate_shard(indices, collect_dir, tmp_dir):
    return _evaluate(indices, NUM_DIST_IMAGES, tmp_dir, collect_dir)


def test_one_and_two_processes_give_identical_metrics(tmp_path):
    _, _, preds = random_gcg(tmp_path, num_images=NUM_DIST_IMAGES, seed=5)
    with open(tmp_path / 'preds.pkl', 'wb') as f:
        pickle.dump(preds, f)
    single = _evaluate(list(range(NUM_DIST_IMAGES)), NUM_DIST_IMAGES, str(tmp_path), None)
    parts = run_distributed(partial(_evaluate_shard, tmp_dir=str(tmp_path)), NUM_DIST_IMAGES, tmp_path, timeout=120)
    assert parts[0]['indices'] == [0, 2, 4, 6] and parts[1]['indices'] == [1, 3, 5, 0]
    assert parts[0]['metrics'] == single and parts[1]['metrics'] == single
    assert set(single) == {'gcg/CIDEr', 'gcg/AP50', 'gcg/mIoU', 'gcg/AP', 'gcg/mIoU_strict'}
    assert single['gcg/AP50'] == independent_cocoeval(str(tmp_path / 'val_gcg_coco_mask_gt.json'), preds)[1]
