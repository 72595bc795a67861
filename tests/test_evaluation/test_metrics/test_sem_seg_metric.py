"""XSAMSemSegMetric: against detectron2's formulas in numpy, absent classes, bad input, 1 vs 2 processes."""
import math
from unittest import mock

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData

from mmxsam.evaluation.metrics.sem_seg_metric import XSAMSemSegMetric

from dist_helpers import run_distributed  # noqa: E402  (the shared 2-process scaffolding, beside this file)


IGNORE = 255
NUM_CLASSES = 6
LOG_TARGET = 'mmxsam.evaluation.metrics.sem_seg_metric.print_log'


def make_sample(sample_idx, pred, gt, as_dict=True):
    ds = DetDataSample(metainfo=dict(sample_idx=sample_idx))
    ds.pred_sem_seg = PixelData(sem_seg=torch.as_tensor(pred)[None])
    ds.gt_sem_seg = PixelData(sem_seg=torch.as_tensor(gt)[None])
    return ds.to_dict() if as_dict else ds


def detectron2_reference(samples, num_classes):
    """detectron2 ``SemSegEvaluator``: ``(C+1)^2`` matrix indexed [pred, gt], ignore -> C; valid = pos_gt > 0."""
    conf = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for _, pred, gt in samples:
        gt = np.asarray(gt).astype(np.int64).copy()
        pred = np.asarray(pred).astype(np.int64)
        gt[gt == IGNORE] = num_classes
        conf += np.bincount((num_classes + 1) * pred.reshape(-1) + gt.reshape(-1),
                            minlength=conf.size).reshape(conf.shape)
    acc = np.full(num_classes, np.nan)
    iou = np.full(num_classes, np.nan)
    tp = conf.diagonal()[:-1].astype(float)
    pos_gt = np.sum(conf[:-1, :-1], axis=0).astype(float)
    class_weights = pos_gt / np.sum(pos_gt)
    pos_pred = np.sum(conf[:-1, :-1], axis=1).astype(float)
    acc_valid = pos_gt > 0
    acc[acc_valid] = tp[acc_valid] / pos_gt[acc_valid]
    union = pos_gt + pos_pred - tp
    iou_valid = np.logical_and(acc_valid, union > 0)
    iou[iou_valid] = tp[iou_valid] / union[iou_valid]
    return dict(mIoU=100 * np.sum(iou[iou_valid]) / np.sum(iou_valid),
                fwIoU=100 * np.sum(iou[iou_valid] * class_weights[iou_valid]),
                mAcc=100 * np.sum(acc[acc_valid]) / np.sum(acc_valid),
                pAcc=100 * np.sum(tp) / np.sum(pos_gt))


def random_samples(n, seed=0, num_classes=NUM_CLASSES, absent=(4, )):
    """Random maps over the classes except ``absent`` (in neither GT nor prediction), with ignore pixels."""
    rng = np.random.default_rng(seed)
    present = [c for c in range(num_classes) if c not in absent]
    samples = []
    for i in range(n):
        h, w = int(rng.integers(4, 20)), int(rng.integers(4, 20))
        gt = rng.choice(present, size=(h, w)).astype(np.uint8)
        pred = np.where(rng.random((h, w)) < 0.6, gt, rng.choice(present, size=(h, w))).astype(np.int64)
        gt[rng.random((h, w)) < 0.15] = IGNORE
        samples.append((i, pred, gt))
    return samples


def run_metric(metric, samples, batch_size=3):
    data = [make_sample(i, p, g) for i, p, g in samples]
    for start in range(0, len(data), batch_size):
        metric.process({}, data[start:start + batch_size])
    return metric.compute_metrics(metric.results)


def assert_close(metrics, ref):
    assert list(metrics) == ['mIoU', 'fwIoU', 'mAcc', 'pAcc']
    for key, value in ref.items():
        assert metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        assert isinstance(metrics[key], float)


# ----------------------------------------------------------------------------------------------------
def test_hand_made_numbers():
    # 2 classes; class 2 absent from GT and prediction; 3 is predicted but absent from GT (C = 4)
    gt = np.array([[0, 0, 1, 1], [0, IGNORE, 1, 1]], np.uint8)
    pred = np.array([[0, 1, 1, 3], [0, 0, 1, 1]], np.int64)
    metric = XSAMSemSegMetric(num_classes=4)
    matrix = metric.confusion_matrix(pred, gt)
    assert matrix.shape == (4, 5)
    assert matrix[0, 0] == 2 and matrix[0, 1] == 1 and matrix[1, 1] == 3 and matrix[1, 3] == 1
    assert matrix.sum() == 7  # the ignore pixel is out (its prediction 0 counts nowhere)
    metrics = run_metric(metric, [(0, pred, gt)])
    iou0, iou1 = 2 / (3 + 2 - 2), 3 / (4 + 4 - 3)
    acc0, acc1 = 2 / 3, 3 / 4
    assert metrics['mIoU'] == pytest.approx(100 * (iou0 + iou1) / 2)  # classes 2 and 3 left out
    assert metrics['mAcc'] == pytest.approx(100 * (acc0 + acc1) / 2)
    assert metrics['fwIoU'] == pytest.approx(100 * (3 / 7 * iou0 + 4 / 7 * iou1))
    assert metrics['pAcc'] == pytest.approx(100 * 5 / 7)


def test_matches_detectron2_reference_with_absent_classes():
    samples = random_samples(17, seed=1, absent=(2, 4))
    metrics = run_metric(XSAMSemSegMetric(num_classes=NUM_CLASSES), samples)
    assert_close(metrics, detectron2_reference(samples, NUM_CLASSES))


def test_pacc_is_pixel_accuracy_not_class_mean():
    # class 0: 90 pixels all right, class 1: 10 pixels all wrong -> pAcc 90, mAcc 50 (mmdet's aAcc would say 50)
    gt = np.array([0] * 90 + [1] * 10, np.uint8)[None]
    pred = np.zeros_like(gt, dtype=np.int64)
    metrics = run_metric(XSAMSemSegMetric(num_classes=2), [(0, pred, gt)])
    assert metrics['pAcc'] == pytest.approx(90.0) and metrics['mAcc'] == pytest.approx(50.0)


def test_num_classes_from_dataset_meta_and_unlabelled_prediction():
    metric = XSAMSemSegMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    gt = np.array([[0, 1, 2, IGNORE]], np.uint8)
    pred = np.array([[0, IGNORE, 2, 1]], np.int64)  # 255 predicted: a miss for class 1, no class's FP
    metrics = run_metric(metric, [(0, pred, gt)])
    assert metric.num_classes == 3
    assert metrics['mIoU'] == pytest.approx(100 * 2 / 3) and metrics['pAcc'] == pytest.approx(100 * 2 / 3)


def test_results_are_sparse_confusion_entries():
    metric = XSAMSemSegMetric(num_classes=150)
    gt = np.zeros((64, 64), np.uint8)
    gt[:10] = 7
    pred = np.zeros((64, 64), np.int64)
    metric.process({}, [make_sample(3, pred, gt)])
    (result, ) = metric.results
    assert result['sample_idx'] == 3 and len(result['index']) == 2 and result['count'].sum() == 64 * 64


def test_duplicates_dropped_and_logged():
    samples = random_samples(6, seed=2)
    clean = run_metric(XSAMSemSegMetric(num_classes=NUM_CLASSES), samples)
    with mock.patch('mmxsam.evaluation.metrics.metric_utils.print_log') as log:  # the shared helper logs
        padded = run_metric(XSAMSemSegMetric(num_classes=NUM_CLASSES), samples + samples[:2])
    assert padded == clean
    messages = ' '.join(str(c.args[0]) for c in log.call_args_list)
    assert 'dropped 2 repeated result(s)' in messages and 'differ' not in messages


def test_empty_and_all_ignored_give_nan_with_warning():
    metric = XSAMSemSegMetric(num_classes=3)
    with mock.patch(LOG_TARGET) as log:
        metrics = metric.compute_metrics([])
    assert list(metrics) == ['mIoU', 'fwIoU', 'mAcc', 'pAcc'] and all(math.isnan(v) for v in metrics.values())
    assert 'no results' in log.call_args.args[0]
    ignored = np.full((2, 2), IGNORE, np.uint8)
    with mock.patch(LOG_TARGET) as log:
        metrics = run_metric(XSAMSemSegMetric(num_classes=3), [(0, np.zeros((2, 2), np.int64), ignored)])
    assert all(math.isnan(v) for v in metrics.values()) and 'no labelled ground-truth pixel' in log.call_args.args[0]


@pytest.mark.parametrize('pred, gt, match', [
    (np.zeros((2, 3)), np.zeros((2, 2)), r'sample_idx=5: prediction shape \(2, 3\)'),
    (np.array([[0, 3]]), np.array([[0, 0]]), r'prediction must hold \[0, 3\).*\[3\]'),
    (np.array([[0, -1]]), np.array([[0, 0]]), r'prediction must hold.*\[-1\]'),
    (np.array([[0.0, 0.5]]), np.array([[0, 0]]), 'integer class indices'),
    (np.array([[0, 0]]), np.array([[0, 9]]), r'ground truth must hold \[0, 3\) or 255.*\[9\]'),
])
def test_bad_input_raises(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        XSAMSemSegMetric(num_classes=3).process({}, [make_sample(5, pred, gt)])


def test_config_errors():
    with pytest.raises(ValueError, match='classes'):
        XSAMSemSegMetric().process({}, [make_sample(0, np.zeros((1, 1)), np.zeros((1, 1)))])
    with pytest.raises(ValueError, match='ignore_index 1 is a class index'):
        XSAMSemSegMetric(num_classes=3, ignore_index=1)
    with pytest.raises(KeyError, match='sample_idx'):
        sample = make_sample(0, np.zeros((1, 1)), np.zeros((1, 1)))
        del sample['sample_idx']
        XSAMSemSegMetric(num_classes=3).process({}, [sample])


def test_registry_and_evaluator_prefix():
    metric = METRICS.build(dict(type='XSAMSemSegMetric', num_classes=NUM_CLASSES))
    assert isinstance(metric, XSAMSemSegMetric)
    samples = random_samples(5, seed=3)
    evaluator = Evaluator(metric)
    evaluator.process([make_sample(i, p, g, as_dict=False) for i, p, g in samples])
    metrics = evaluator.evaluate(len(samples))
    ref = detectron2_reference(samples, NUM_CLASSES)
    assert set(metrics) == {'sem_seg/mIoU', 'sem_seg/fwIoU', 'sem_seg/mAcc', 'sem_seg/pAcc'}
    assert metrics['sem_seg/mIoU'] == pytest.approx(ref['mIoU'], rel=1e-12)


# ----------------------------------------------------------------------------------------------------
# 1 vs 2 processes
# ----------------------------------------------------------------------------------------------------
NUM_DIST_SAMPLES = 9


def _evaluate(indices, collect_dir):
    samples = random_samples(NUM_DIST_SAMPLES, seed=7)
    evaluator = Evaluator(XSAMSemSegMetric(num_classes=NUM_CLASSES, collect_dir=collect_dir))
    for start in range(0, len(indices), 2):
        evaluator.process([make_sample(i, samples[i][1], samples[i][2], as_dict=False)
                           for i in indices[start:start + 2]])
    return evaluator.evaluate(NUM_DIST_SAMPLES)


def test_one_and_two_processes_give_identical_metrics(tmp_path):
    single = _evaluate(list(range(NUM_DIST_SAMPLES)), None)
    parts = run_distributed(_evaluate, NUM_DIST_SAMPLES, tmp_path)
    assert parts[1]['indices'][-1] == 0  # rank 1 carries the padded repeat of sample 0
    assert parts[0]['metrics'] == single and parts[1]['metrics'] == single
    ref = detectron2_reference(random_samples(NUM_DIST_SAMPLES, seed=7), NUM_CLASSES)
    assert single['sem_seg/mIoU'] == pytest.approx(ref['mIoU'], rel=1e-12)
