"""ReferSegMetric: cIoU/gIoU against a direct numpy computation, input checks, and 1 vs 2 processes."""
import math
from unittest import mock

import numpy as np
import pytest
import torch
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData

from mmxsam.evaluation import ReferSegMetric

from dist_helpers import run_distributed  # noqa: E402  (the shared 2-process scaffolding, beside this file)


IGNORE = 255
LOG_TARGET = 'mmxsam.evaluation.metrics.refer_seg_metric.print_log'


# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------
def make_sample(sample_idx, pred, gt, split=None, as_dict=True):
    """A data sample as mmengine's Evaluator passes it (``DetDataSample.to_dict()``) or the element itself."""
    metainfo = dict(sample_idx=sample_idx)
    if split is not None:
        metainfo['split'] = split
    ds = DetDataSample(metainfo=metainfo)
    ds.pred_sem_seg = PixelData(sem_seg=torch.as_tensor(pred)[None])
    ds.gt_sem_seg = PixelData(sem_seg=torch.as_tensor(gt)[None])
    return ds.to_dict() if as_dict else ds


def numpy_reference(samples):
    """Direct computation: {group: (cIoU, gIoU)} with group None = overall; U == 0 -> IoU 1.0."""
    groups = {}
    for idx, pred, gt, split in samples:
        pred, gt = np.asarray(pred).astype(bool), np.asarray(gt)
        valid = gt != IGNORE
        inter = np.logical_and(pred & valid, gt == 1).sum()
        union = np.logical_or(pred & valid, gt == 1).sum()
        for key in (None, split) if split is not None else (None, ):
            groups.setdefault(key, []).append((inter, union))
    out = {}
    for key, pairs in groups.items():
        inter = np.array([p[0] for p in pairs], dtype=np.float64)
        union = np.array([p[1] for p in pairs], dtype=np.float64)
        ciou = 100.0 * inter.sum() / union.sum()
        giou = 100.0 * np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0))
        out[key] = (ciou, giou)
    return out


def random_samples(n, seed=0, splits=('val', 'testA', 'testB')):
    """``n`` samples (idx, pred, gt, split) of varying sizes, with ignore regions and empty-target cases."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        h, w = int(rng.integers(5, 24)), int(rng.integers(5, 24))
        gt = (rng.random((h, w)) < rng.uniform(0.1, 0.6)).astype(np.uint8)
        pred = (rng.random((h, w)) < rng.uniform(0.1, 0.6)).astype(np.uint8)
        if i % 3 == 0:  # ReasonSeg-style ignore band
            gt[: h // 3] = IGNORE
        if i % 5 == 4:  # empty target and empty prediction: U == 0
            gt[:] = 0
            pred[:] = 0
        samples.append((i, pred, gt, splits[i % len(splits)]))
    return samples


def run_metric(metric, samples, batch_size=2, as_dict=True):
    data = [make_sample(i, p, g, s, as_dict=as_dict) for i, p, g, s in samples]
    for start in range(0, len(data), batch_size):
        metric.process({}, data[start:start + batch_size])
    return metric.compute_metrics(metric.results)


# ----------------------------------------------------------------------------------------------------
# numbers
# ----------------------------------------------------------------------------------------------------
def test_hand_made_counts_ignore_and_empty_sample():
    metric = ReferSegMetric()
    # sample 0: 2x4, pred covers 3 GT pixels + 1 extra, misses 1 GT pixel -> I = 3, U = 5
    gt0 = np.array([[1, 1, 1, 1], [0, 0, 0, 0]], np.uint8)
    pred0 = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], np.uint8)
    # sample 1: predicted pixels inside the ignore region count in neither I nor U -> I = 1, U = 2
    gt1 = np.array([[1, 1, IGNORE, IGNORE]], np.uint8)
    pred1 = np.array([[1, 0, 1, 1]], bool)
    # sample 2: empty target, empty prediction (after ignore) -> U = 0 -> IoU 1.0
    gt2 = np.array([[0, 0, IGNORE]], np.uint8)
    pred2 = np.array([[0, 0, 1]], np.int64)
    assert metric.intersection_and_union(torch.from_numpy(pred0)[None], torch.from_numpy(gt0)[None]) == (3, 5)
    assert metric.intersection_and_union(pred1, gt1) == (1, 2)
    assert metric.intersection_and_union(pred2, gt2) == (0, 0)

    metrics = run_metric(metric, [(0, pred0, gt0, None), (1, pred1, gt1, None), (2, pred2, gt2, None)])
    assert list(metrics) == ['cIoU', 'gIoU']
    assert metrics['cIoU'] == pytest.approx(100.0 * 4 / 7)
    assert metrics['gIoU'] == pytest.approx(100.0 * (3 / 5 + 1 / 2 + 1.0) / 3)


def test_matches_numpy_reference_per_split():
    samples = random_samples(23, seed=1)
    metrics = run_metric(ReferSegMetric(), samples, batch_size=4)
    ref = numpy_reference(samples)
    assert list(metrics) == ['cIoU', 'gIoU', 'testA/cIoU', 'testA/gIoU', 'testB/cIoU', 'testB/gIoU',
                             'val/cIoU', 'val/gIoU']
    for key, (ciou, giou) in ref.items():
        name = '' if key is None else f'{key}/'
        assert metrics[f'{name}cIoU'] == pytest.approx(ciou, rel=1e-12, abs=0)
        assert metrics[f'{name}gIoU'] == pytest.approx(giou, rel=1e-12, abs=0)
    assert all(isinstance(v, float) for v in metrics.values())


def test_reasonseg_split_names_and_custom_split_key():
    samples = random_samples(10, seed=2, splits=('short', 'long'))
    metric = ReferSegMetric(split_key='query_type')
    data = []
    for idx, pred, gt, split in samples:
        d = make_sample(idx, pred, gt)
        d['query_type'] = split
        data.append(d)
    metric.process({}, data)
    metrics = metric.compute_metrics(metric.results)
    ref = numpy_reference(samples)
    assert set(metrics) == {'cIoU', 'gIoU', 'long/cIoU', 'long/gIoU', 'short/cIoU', 'short/gIoU'}
    assert metrics['short/gIoU'] == pytest.approx(ref['short'][1], rel=1e-12)
    assert metrics['long/cIoU'] == pytest.approx(ref['long'][0], rel=1e-12)


def test_all_empty_group_scores_100():
    empty = np.zeros((3, 3), np.uint8)
    metrics = run_metric(ReferSegMetric(), [(0, empty, empty, 'val'), (1, empty, empty, 'val')])
    assert metrics['cIoU'] == 100.0 and metrics['gIoU'] == 100.0


def test_duplicates_dropped_counted_and_logged():
    samples = random_samples(8, seed=3)
    clean = run_metric(ReferSegMetric(), samples)
    # repeat samples 0 and 1 (as a padding sampler would) with *different* results for sample 1
    bad_pred = 1 - samples[1][1]
    padded = samples + [samples[0], (1, bad_pred, samples[1][2], samples[1][3])]
    metric = ReferSegMetric()
    with mock.patch(LOG_TARGET) as log:
        metrics = run_metric(metric, padded)
    assert metrics == clean
    messages = ' '.join(str(call.args[0]) for call in log.call_args_list)
    assert 'dropped 2 repeated result(s)' in messages and '8 unique samples' in messages
    assert '1 of the dropped repeats differ' in messages


def test_results_hold_counts_not_masks():
    metric = ReferSegMetric()
    samples = random_samples(3, seed=4)
    run_metric(metric, samples)
    assert len(metric.results) == 3
    for sample_idx, split, inter, union in metric.results:
        assert type(sample_idx) is int and type(inter) is int and type(union) is int
        assert isinstance(split, str)


# ----------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------
def test_empty_results_warn_and_give_nan():
    metric = ReferSegMetric()
    with mock.patch(LOG_TARGET) as log:
        metrics = metric.compute_metrics([])
    assert set(metrics) == {'cIoU', 'gIoU'} and all(math.isnan(v) for v in metrics.values())
    assert 'no results' in log.call_args.args[0]


def test_shape_mismatch_names_sample_and_shapes():
    metric = ReferSegMetric()
    sample = make_sample(17, np.zeros((4, 5), np.uint8), np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match=r'sample_idx=17.*\(1, 4, 5\).*\(1, 4, 6\)'):
        metric.process({}, [sample])


@pytest.mark.parametrize('pred', [
    np.array([[0, 2]], np.uint8),
    np.array([[0.0, 0.5]], np.float32),
    np.array([[0.0, float('nan')]], np.float32),
    np.array([[0, 255]], np.uint8),
])
def test_non_binary_prediction_raises(pred):
    with pytest.raises(ValueError, match='sample_idx=3: prediction must be binary'):
        ReferSegMetric().process({}, [make_sample(3, pred, np.zeros((1, 2), np.uint8))])


def test_float_binary_prediction_accepted_and_bad_gt_raises():
    metric = ReferSegMetric()
    assert metric.intersection_and_union(torch.tensor([[1.0, 0.0]]), torch.tensor([[1, 1]])) == (1, 2)
    with pytest.raises(ValueError, match=r'ground truth must hold \{0, 1, 255\}.*\[7\]'):
        metric.intersection_and_union(torch.tensor([[1, 0]]), torch.tensor([[7, 1]]), sample_idx=0)


def test_missing_sample_idx_raises():
    sample = make_sample(0, np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    del sample['sample_idx']
    with pytest.raises(KeyError, match='sample_idx'):
        ReferSegMetric().process({}, [sample])


# ----------------------------------------------------------------------------------------------------
# OpenMMLab plumbing
# ----------------------------------------------------------------------------------------------------
def test_registry_build_and_evaluator_with_data_elements():
    metric = METRICS.build(dict(type='ReferSegMetric', prefix='refcoco'))
    assert isinstance(metric, ReferSegMetric)
    samples = random_samples(6, seed=5)
    evaluator = Evaluator(metric)
    evaluator.process([make_sample(i, p, g, s, as_dict=False) for i, p, g, s in samples])
    metrics = evaluator.evaluate(len(samples))
    ref = numpy_reference(samples)
    assert metrics['refcoco/cIoU'] == pytest.approx(ref[None][0], rel=1e-12)
    assert metrics['refcoco/val/gIoU'] == pytest.approx(ref['val'][1], rel=1e-12)
    assert ReferSegMetric().prefix == 'refer'


# ----------------------------------------------------------------------------------------------------
# 1 vs 2 processes
# ----------------------------------------------------------------------------------------------------
NUM_DIST_SAMPLES = 11  # odd: DefaultSampler pads rank 1 with a repeat of sample 0


def _evaluate_with_evaluator(indices, size, collect_dir):
    samples = random_samples(NUM_DIST_SAMPLES, seed=7)
    evaluator = Evaluator(ReferSegMetric(collect_dir=collect_dir))
    for start in range(0, len(indices), 2):  # batch size 2
        batch = [samples[i] for i in indices[start:start + 2]]
        evaluator.process([make_sample(i, p, g, s, as_dict=False) for i, p, g, s in batch])
    return evaluator.evaluate(size)


def _evaluate_shard(indices, collect_dir):
    return _evaluate_with_evaluator(indices, NUM_DIST_SAMPLES, collect_dir)


def test_one_and_two_processes_give_identical_metrics(tmp_path):
    single = _evaluate_with_evaluator(list(range(NUM_DIST_SAMPLES)), NUM_DIST_SAMPLES, None)
    parts = run_distributed(_evaluate_shard, NUM_DIST_SAMPLES, tmp_path)

    # the sampler split the data as expected: rank 1 carries the padded repeat of sample 0
    assert parts[0]['indices'] == [0, 2, 4, 6, 8, 10]
    assert parts[1]['indices'] == [1, 3, 5, 7, 9, 0]
    # identical numbers (exact), on rank 0 and broadcast to rank 1
    assert parts[0]['metrics'] == single
    assert parts[1]['metrics'] == single
    assert set(single) >= {'refer/cIoU', 'refer/gIoU', 'refer/val/cIoU', 'refer/testA/gIoU'}
    ref = numpy_reference(random_samples(NUM_DIST_SAMPLES, seed=7))
    assert single['refer/gIoU'] == pytest.approx(ref[None][1], rel=1e-12)
