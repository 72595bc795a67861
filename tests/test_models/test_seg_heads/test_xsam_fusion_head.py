"""XSAMFusionHead: hand-made logits -> hand-computed panoptic / instance / semantic outputs.

Classes: 2 things (0, 1), 1 stuff (2); column 3 is background. VOID in panoptic maps is 3.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import METRICS, MODELS
from mmdet.structures import DetDataSample
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData

import mmxsam.models  # noqa: F401  (registration)
from mmxsam.models.seg_heads import XSAMFusionHead

NUM_THINGS, NUM_STUFF = 2, 1
VOID = NUM_THINGS + NUM_STUFF
OFF = INSTANCE_OFFSET
BIG = 20.0  # |mask logit| that makes sigmoid ~ 0 or 1

XSAM_PANOPTIC = dict(object_mask_thr=0.5, iou_thr=0.8, mask_thr=0.5, filter_low_score=False,
                     fg_only_label=True, score_weighted_area=True, strict_iou_thr=True)
XSAM_INSTANCE = dict(max_per_image=None, instance_things_only=False, instance_score_thr=0.0)


def head(**test_cfg) -> XSAMFusionHead:
    return MODELS.build(dict(type='XSAMFusionHead', num_things_classes=NUM_THINGS,
                             num_stuff_classes=NUM_STUFF, test_cfg=test_cfg))


def cls_logits(*rows) -> torch.Tensor:
    """(Q, C + 1) logits whose softmax is exactly the given probability rows."""
    probs = torch.tensor(rows, dtype=torch.float64)
    assert torch.allclose(probs.sum(-1), torch.ones(len(rows), dtype=torch.float64))
    return probs.log().float()


def on(h, w, rows, cols, inside=BIG, outside=-BIG) -> torch.Tensor:
    """(h, w) mask logits: ``inside`` on rows x cols (python slices), ``outside`` elsewhere."""
    m = torch.full((h, w), outside)
    m[rows, cols] = inside
    return m


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def pan(h: XSAMFusionHead, cls, masks) -> np.ndarray:
    out = h.panoptic_postprocess(cls, torch.stack(masks))
    assert out.sem_seg.shape == (1, ) + tuple(masks[0].shape) and out.sem_seg.dtype == torch.int32
    return out.sem_seg[0].numpy()


# ---------------------------------------------------------------------------------------------
# panoptic
@pytest.mark.parametrize('cfg', [dict(), XSAM_PANOPTIC, dict(XSAM_PANOPTIC, object_mask_thr=0.0)],
                         ids=['mmdet', 'xsam_s1', 'xsam_s3'])
def test_panoptic_things_and_stuff(cfg):
    h, w = 4, 6
    cls = cls_logits(
        [0.95, 0.02, 0.02, 0.01],  # q0 thing 0, top-left
        [0.90, 0.04, 0.04, 0.02],  # q1 thing 0, top-right (second instance of the class)
        [0.05, 0.05, 0.85, 0.05],  # q2 stuff 2, bottom-left
        [0.05, 0.05, 0.85, 0.05],  # q3 stuff 2, bottom-right (merged with q2)
        [0.04, 0.03, 0.03, 0.90],  # q4 background, covers everything
        [0.50, 0.30, 0.10, 0.10],  # q5 thing 0 at 0.5: dropped, or loses every pixel to q0
    )
    masks = [on(h, w, slice(0, 2), slice(0, 3)), on(h, w, slice(0, 2), slice(3, 6)),
             on(h, w, slice(2, 4), slice(0, 3)), on(h, w, slice(2, 4), slice(3, 6)),
             on(h, w, slice(None), slice(None)), on(h, w, slice(0, 2), slice(0, 3))]
    expected = np.array([[0 + 1 * OFF] * 3 + [0 + 2 * OFF] * 3] * 2 + [[2] * 6] * 2)
    np.testing.assert_array_equal(pan(head(**cfg), cls, masks), expected)
    # each segment's score: its query's class probability; the merged stuff segment keeps the best
    scores = head(**cfg).panoptic_postprocess(cls, torch.stack(masks)).segment_scores
    probs = torch.softmax(cls, -1)
    assert set(scores) == {1 * OFF, 2 * OFF, 2}
    assert scores[1 * OFF] == pytest.approx(float(probs[0, 0]))
    assert scores[2 * OFF] == pytest.approx(float(probs[1, 0]))
    assert scores[2] == pytest.approx(float(probs[2:4, 2].max()))


def test_panoptic_per_image_split_and_class_count():
    """A sample's own thing/stuff split (open vocabulary, inferencer) and its own class count (VOID = C)."""
    h, w = 2, 6
    cls = cls_logits([0.95, 0.02, 0.02, 0.01], [0.90, 0.04, 0.04, 0.02], [0.04, 0.03, 0.03, 0.90])
    masks = torch.stack([on(h, w, slice(None), slice(0, 3)), on(h, w, slice(None), slice(3, 6)),
                         on(h, w, slice(None), slice(None))])
    fusion = head(**XSAM_PANOPTIC)
    things = np.array([[0 + 1 * OFF] * 3 + [0 + 2 * OFF] * 3] * h)
    np.testing.assert_array_equal(pan(fusion, cls, list(masks)), things)  # the head's split: class 0 is a thing
    out = fusion.panoptic_postprocess(cls, masks, num_things_classes=0)  # all stuff: one merged segment
    np.testing.assert_array_equal(out.sem_seg[0].numpy(), np.zeros((h, w)))
    assert fusion.num_things_classes == NUM_THINGS  # the head is not changed
    # 5 prompted classes (more than the head's 3): labels 3 and 4 are classes, VOID is 5
    cls5 = cls_logits([0.01, 0.01, 0.01, 0.95, 0.01, 0.01], [0.01, 0.01, 0.01, 0.01, 0.95, 0.01])
    out = fusion.panoptic_postprocess(cls5, masks[:2], num_things_classes=4)
    np.testing.assert_array_equal(out.sem_seg[0].numpy(), np.array([[3 + OFF] * 3 + [4] * 3] * h))
    assert out.ignore_index == 5
    void = fusion.panoptic_postprocess(cls_logits([0.01] * 5 + [0.95]), masks[:1], num_things_classes=4)
    np.testing.assert_array_equal(void.sem_seg[0].numpy(), np.full((h, w), 5))
    assert void.ignore_index == 5  # mmdet's CocoPanopticMetric reads VOID from here
    # predict reads the split from each sample's metainfo
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w))),
               DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), num_things_classes=0))]
    res = fusion.predict(torch.stack([cls, cls]), torch.stack([masks, masks]), samples)
    np.testing.assert_array_equal(res[0]['pan_results'].sem_seg[0].numpy(), things)
    np.testing.assert_array_equal(res[1]['pan_results'].sem_seg[0].numpy(), np.zeros((h, w)))
    # instance results: things only by default, with the sample's split
    assert len(fusion.instance_postprocess(cls, masks, num_things_classes=0)) == 0
    assert len(fusion.instance_postprocess(cls, masks)) > 0


@pytest.mark.parametrize('cfg', [dict(), XSAM_PANOPTIC], ids=['mmdet', 'xsam'])
def test_panoptic_overlap_threshold(cfg):
    # q1 (6 px) keeps only 4 px after q0 (higher score) takes cols 4-5: ratio 4/6 < 0.8 -> dropped
    cls = cls_logits([0.95, 0.02, 0.02, 0.01], [0.02, 0.90, 0.04, 0.04])
    masks = [on(1, 10, 0, slice(0, 6)), on(1, 10, 0, slice(4, 10))]
    np.testing.assert_array_equal(pan(head(**cfg), cls, masks)[0], [1 * OFF] * 6 + [VOID] * 4)
    # a looser threshold keeps it
    np.testing.assert_array_equal(
        pan(head(**dict(cfg, iou_thr=0.6)), cls, masks)[0], [1 * OFF] * 6 + [1 + 2 * OFF] * 4)


def test_panoptic_strict_iou_thr():
    # ratio exactly 0.8 (4 of 5 px): mmdet keeps (>=), X-SAM drops (>)
    cls = cls_logits([0.95, 0.02, 0.02, 0.01], [0.02, 0.90, 0.04, 0.04])
    masks = [on(1, 10, 0, slice(0, 6)), on(1, 10, 0, slice(5, 10))]
    np.testing.assert_array_equal(pan(head(), cls, masks)[0], [1 * OFF] * 6 + [1 + 2 * OFF] * 4)
    np.testing.assert_array_equal(
        pan(head(strict_iou_thr=True), cls, masks)[0], [1 * OFF] * 6 + [VOID] * 4)


def test_panoptic_score_weighted_area():
    # q1 (score 0.6): prob 0.7 on cols 0-3 (weighted 0.42), 0.9 on cols 4-9 (weighted 0.54);
    # q0 (score 0.95) wins cols 0-3. q1's area ratio: unweighted 6/10 -> dropped (mmdet);
    # weighted 6/6 -> kept (X-SAM).
    cls = cls_logits([0.95, 0.02, 0.02, 0.01], [0.05, 0.60, 0.05, 0.30])
    q1 = torch.tensor([[logit(0.7)] * 4 + [logit(0.9)] * 6])
    masks = [on(1, 10, 0, slice(0, 4)), q1]
    np.testing.assert_array_equal(
        pan(head(object_mask_thr=0.5), cls, masks)[0], [1 * OFF] * 4 + [VOID] * 6)
    np.testing.assert_array_equal(
        pan(head(object_mask_thr=0.5, score_weighted_area=True), cls, masks)[0],
        [1 * OFF] * 4 + [1 + 2 * OFF] * 6)


def test_panoptic_fg_only_label():
    # background is the top class (0.6), best foreground is thing 0 (0.3)
    cls = cls_logits([0.30, 0.05, 0.05, 0.60])
    masks = [on(2, 2, slice(None), slice(None))]
    assert (pan(head(object_mask_thr=0.2), cls, masks) == VOID).all()  # mmdet: a "no object" query
    assert (pan(head(object_mask_thr=0.2, fg_only_label=True), cls, masks) == 1 * OFF).all()  # X-SAM
    assert (pan(head(object_mask_thr=0.4, fg_only_label=True), cls, masks) == VOID).all()


def test_panoptic_uncovered_pixels():
    # pixels no mask covers still go to the arg-max query unless filter_low_score
    cls = cls_logits([0.95, 0.02, 0.02, 0.01])
    masks = [on(1, 8, 0, slice(0, 6))]
    assert (pan(head(), cls, masks) == 1 * OFF).all()
    np.testing.assert_array_equal(
        pan(head(filter_low_score=True), cls, masks)[0], [1 * OFF] * 6 + [VOID] * 2)


@pytest.mark.parametrize('cfg', [dict(), XSAM_PANOPTIC], ids=['mmdet', 'xsam'])
def test_panoptic_empty_and_all_background(cfg):
    h, w = 3, 5
    # all queries say background
    bg = cls_logits(*[[0.02, 0.02, 0.01, 0.95]] * 3)
    masks = [on(h, w, slice(None), slice(0, 2)), on(h, w, slice(None), slice(2, 5)),
             on(h, w, slice(None), slice(None))]
    assert (pan(head(**cfg), bg, masks) == VOID).all()
    # confident things whose masks are empty everywhere
    fg = cls_logits(*[[0.95, 0.02, 0.02, 0.01]] * 3)
    assert (pan(head(**cfg), fg, [torch.full((h, w), -BIG)] * 3) == VOID).all()


@pytest.mark.parametrize('filter_low_score', [False, True])
def test_panoptic_defaults_match_mmdet(filter_low_score):
    torch.manual_seed(0)
    ref = MODELS.build(dict(type='MaskFormerFusionHead', num_things_classes=NUM_THINGS,
                            num_stuff_classes=NUM_STUFF,
                            test_cfg=dict(object_mask_thr=0.3, filter_low_score=filter_low_score)))
    ours = head(object_mask_thr=0.3, filter_low_score=filter_low_score)
    kept = set()
    for _ in range(5):
        cls = torch.randn(12, VOID + 1) * 3
        # noisy random partition of the image into query regions (segments survive the ratio test)
        field = F.interpolate(torch.randn(1, 12, 3, 3), size=(9, 11), mode='bilinear')[0]
        masks = torch.where(field == field.max(0).values, 3.0, -3.0) + torch.randn(12, 9, 11)
        out = ours.panoptic_postprocess(cls, masks).sem_seg
        torch.testing.assert_close(out, ref.panoptic_postprocess(cls, masks).sem_seg)
        kept |= set(out.unique().tolist())
    assert 2 in kept and any(v >= OFF for v in kept)  # both stuff and thing segments were produced


# ---------------------------------------------------------------------------------------------
# instance
def _instance_example():
    cls = cls_logits([0.70, 0.10, 0.15, 0.05], [0.20, 0.50, 0.25, 0.05])
    masks = torch.tensor([[[2.0, 1.0, -1.0], [-3.0, 0.5, -2.0]],
                          [[-1.0, -1.0, 3.0], [-1.0, -1.0, 4.0]]])
    sig = lambda x: 1 / (1 + np.exp(-np.asarray(x)))  # noqa: E731
    m0, m1 = sig([2.0, 1.0, 0.5]).mean(), sig([3.0, 4.0]).mean()  # mean prob inside logit > 0
    bin0 = np.array([[1, 1, 0], [0, 1, 0]], bool)
    bin1 = np.array([[0, 0, 1], [0, 0, 1]], bool)
    # label -> (score, mask, box xyxy)
    expected = {0: (0.70 * m0, bin0, [0, 0, 2, 2]), 1: (0.50 * m1, bin1, [2, 0, 3, 2]),
                2: (0.25 * m1, bin1, [2, 0, 3, 2])}
    return cls, masks, expected


def _check_instances(res, expected, labels):
    assert len(res) == len(labels)
    order = res.labels.argsort()
    np.testing.assert_array_equal(res.labels[order].numpy(), labels)
    for i, lab in zip(order.tolist(), labels):
        score, mask, box = expected[lab]
        assert res.scores[i].item() == pytest.approx(score, rel=1e-5)
        np.testing.assert_array_equal(res.masks[i].numpy(), mask)
        np.testing.assert_array_equal(res.bboxes[i].numpy(), box)
    assert res.masks.dtype == torch.bool and res.bboxes.shape == (len(labels), 4)


def test_instance_scoring_mmdet_defaults():
    cls, masks, expected = _instance_example()
    # top-3 pairs: (q0, 0) .70, (q1, 1) .50, (q1, 2) .25; the stuff pair is dropped
    _check_instances(head(max_per_image=3).instance_postprocess(cls, masks), expected, [0, 1])
    # matches mmdet's own implementation exactly, order included
    ref = MODELS.build(dict(type='MaskFormerFusionHead', num_things_classes=NUM_THINGS,
                            num_stuff_classes=NUM_STUFF, test_cfg=dict(max_per_image=3)))
    a, b = head(max_per_image=3).instance_postprocess(cls, masks), ref.instance_postprocess(cls, masks)
    for key in ('labels', 'scores', 'masks', 'bboxes'):
        torch.testing.assert_close(a.get(key), b.get(key))


def test_instance_scoring_xsam():
    cls, masks, expected = _instance_example()
    # X-SAM: top-Q (= 2) pairs, all classes kept, score >= 0.0
    _check_instances(head(**XSAM_INSTANCE).instance_postprocess(cls, masks), expected, [0, 1])
    _check_instances(head(**dict(XSAM_INSTANCE, max_per_image=3)).instance_postprocess(cls, masks),
                     expected, [0, 1, 2])
    # demo threshold: only the first pair clears it
    thr = (expected[0][0] + expected[1][0]) / 2
    _check_instances(head(**dict(XSAM_INSTANCE, instance_score_thr=thr)).instance_postprocess(cls, masks),
                     expected, [0])
    # top-k larger than Q * C is clipped
    assert len(head(max_per_image=100, instance_things_only=False).instance_postprocess(cls, masks)) == 6


def test_instance_empty_and_all_background():
    h, w = 3, 4
    # background-only queries still give top-k pairs, with tiny scores
    bg = cls_logits(*[[0.02, 0.02, 0.01, 0.95]] * 2)
    masks = torch.stack([on(h, w, slice(None), slice(0, 2)), on(h, w, slice(None), slice(2, 4))])
    res = head().instance_postprocess(bg, masks)  # k = min(100, 2 * 3) = 6, 4 things
    assert len(res) == 4 and (res.labels < NUM_THINGS).all() and (res.scores <= 0.02 + 1e-6).all()
    # empty masks: score 0, empty mask, zero box
    fg = cls_logits(*[[0.95, 0.02, 0.02, 0.01]] * 2)
    empty = torch.full((2, h, w), -BIG)
    res = head(**XSAM_INSTANCE).instance_postprocess(fg, empty)
    assert len(res) == 2 and (res.scores == 0).all() and not res.masks.any() and (res.bboxes == 0).all()
    res = head(**dict(XSAM_INSTANCE, instance_score_thr=0.5)).instance_postprocess(fg, empty)
    assert len(res) == 0 and res.masks.shape == (0, h, w) and res.bboxes.shape == (0, 4)


# ---------------------------------------------------------------------------------------------
# semantic
def test_semantic_matches_numpy():
    rng = np.random.default_rng(0)
    cls, masks = rng.normal(size=(5, VOID + 1)) * 2, rng.normal(size=(5, 3, 4)) * 3
    p = np.exp(cls) / np.exp(cls).sum(-1, keepdims=True)
    sem = np.einsum('qc,qhw->chw', p[:, :-1], 1 / (1 + np.exp(-masks)))
    out = head().semantic_postprocess(torch.tensor(cls).float(), torch.tensor(masks).float())
    assert out.sem_seg.shape == (1, 3, 4) and out.sem_seg.dtype == torch.int64
    np.testing.assert_array_equal(out.sem_seg[0].numpy(), sem.argmax(0))


def test_semantic_hand_example():
    # q0: thing 1 on the left half; q1: stuff 2 on the right half; q2: background everywhere;
    # q3: thing 0 with 0.4 on the right column, beaten there by q1's 0.8
    cls = cls_logits([0.05, 0.90, 0.03, 0.02], [0.05, 0.05, 0.80, 0.10], [0.01, 0.01, 0.01, 0.97],
                     [0.40, 0.10, 0.10, 0.40])
    masks = torch.stack([on(2, 4, slice(None), slice(0, 2)), on(2, 4, slice(None), slice(2, 4)),
                         on(2, 4, slice(None), slice(None)), on(2, 4, slice(None), slice(3, 4))])
    out = head().semantic_postprocess(cls, masks)
    np.testing.assert_array_equal(out.sem_seg[0].numpy(), [[1, 1, 2, 2], [1, 1, 2, 2]])


def test_semseg_metric_on_perfect_prediction():
    """mmdet's SemSegMetric reads ``pred_sem_seg.sem_seg`` / ``gt_sem_seg.sem_seg`` (1, H, W)."""
    assert METRICS.get('SemSegMetric') is not None
    h, w = 6, 8
    gt = torch.full((1, h, w), 255, dtype=torch.uint8)  # VOID border
    gt[0, 1:5, 0:3], gt[0, 1:5, 3:6], gt[0, 1:5, 6:8] = 0, 2, 1
    # one confident query per class, mask = that class's region (VOID pixels ignored by the metric)
    cls = cls_logits([0.97, 0.01, 0.01, 0.01], [0.01, 0.97, 0.01, 0.01], [0.01, 0.01, 0.97, 0.01])
    masks = torch.stack([torch.where(gt[0] == c, BIG, -BIG) for c in range(VOID)])
    fusion = head(panoptic_on=False, semantic_on=True)
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
    sample.gt_sem_seg = PixelData(sem_seg=gt)
    sample.pred_sem_seg = fusion.predict(cls[None], masks[None], [sample])[0]['sem_results']

    evaluator = Evaluator(METRICS.build(dict(type='SemSegMetric', iou_metrics=['mIoU'])))
    evaluator.dataset_meta = dict(classes=('a', 'b', 'c'))
    evaluator.process(data_samples=[sample, sample], data_batch=None)
    metrics = evaluator.evaluate(2)
    assert metrics['mIoU'] == 100.0 and metrics['aAcc'] == 100.0 and metrics['mAcc'] == 100.0


# ---------------------------------------------------------------------------------------------
# predict
def test_predict_crop_rescale_and_switches():
    torch.manual_seed(0)
    q, pad = 4, (8, 8)
    cls, masks = torch.randn(2, q, VOID + 1), torch.randn(2, q, *pad)
    samples = [DetDataSample(metainfo=dict(img_shape=(6, 8), ori_shape=(12, 16))),
               DetDataSample(metainfo=dict(img_shape=(8, 5), ori_shape=(8, 5)))]

    # test_cfg None -> mmdet defaults: panoptic only
    out = MODELS.build(dict(type='XSAMFusionHead', num_things_classes=NUM_THINGS,
                            num_stuff_classes=NUM_STUFF)).predict(cls, masks, samples)
    assert [set(r) for r in out] == [{'pan_results'}] * 2

    fusion = head(panoptic_on=True, instance_on=True, semantic_on=True, **XSAM_PANOPTIC, **XSAM_INSTANCE)
    for rescale, shapes in ((False, [(6, 8), (8, 5)]), (True, [(12, 16), (8, 5)])):
        out = fusion.predict(cls, masks, samples, rescale=rescale)
        for res, shape in zip(out, shapes):
            assert set(res) == {'pan_results', 'ins_results', 'sem_results'}
            assert res['pan_results'].sem_seg.shape == (1, *shape)
            assert res['sem_results'].sem_seg.shape == (1, *shape)
            assert res['ins_results'].masks.shape == (q, *shape)
    # without rescale the outputs are the per-image post-processing of the cropped logits
    out = fusion.predict(cls, masks, samples)
    torch.testing.assert_close(out[1]['sem_results'].sem_seg,
                               fusion.semantic_postprocess(cls[1], masks[1, :, :8, :5]).sem_seg)
    # low-precision logits are post-processed in fp32
    out = fusion.predict(cls.bfloat16(), masks.bfloat16(), samples)
    assert out[0]['ins_results'].scores.dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# condition (referring / reasoning / GCG): one mask per class
def _condition_example():
    # class 0 -> q0 (0.60), class 1 -> q1 (0.50), class 2 -> q1 (0.30): q1's top class is 1, yet it
    # is also the most probable query for class 2 (q2 says 0.25, its top being background)
    cls = cls_logits([0.60, 0.10, 0.20, 0.10], [0.10, 0.50, 0.30, 0.10], [0.20, 0.10, 0.25, 0.45],
                     [0.05, 0.05, 0.05, 0.85])
    masks = torch.stack([on(3, 4, slice(0, 2), slice(0, 2)), on(3, 4, slice(1, 3), slice(2, 4)),
                         on(3, 4, slice(None), slice(None)), on(3, 4, slice(None), slice(None))])
    return cls, masks


def test_condition_picks_the_most_probable_query_per_class():
    cls, masks = _condition_example()
    res = head().condition_postprocess(cls, masks)
    assert len(res) == VOID
    assert res.labels.tolist() == [0, 1, 2] and res.labels.dtype == torch.int64
    np.testing.assert_allclose(res.scores.numpy(), [0.60, 0.50, 0.30], rtol=1e-5)
    assert res.masks.dtype == torch.bool and res.masks.shape == (VOID, 3, 4)
    np.testing.assert_array_equal(res.masks[0].numpy(), (masks[0] > 0).numpy())
    np.testing.assert_array_equal(res.masks[1].numpy(), (masks[1] > 0).numpy())
    np.testing.assert_array_equal(res.masks[2].numpy(), (masks[1] > 0).numpy())  # q1 again
    np.testing.assert_array_equal(res.bboxes.numpy(), [[0, 0, 2, 2], [2, 1, 4, 3], [2, 1, 4, 3]])


def test_condition_ignores_background_column():
    # q1 is far more "background" than q0, but q0 is still the more probable query for class 0
    cls = cls_logits([0.40, 0.60], [0.30, 0.70])
    masks = torch.stack([on(2, 2, 0, slice(None)), on(2, 2, slice(None), slice(None))])
    res = head().condition_postprocess(cls, masks)  # a single class (one referring expression)
    assert res.labels.tolist() == [0] and res.scores.item() == pytest.approx(0.40, rel=1e-5)
    np.testing.assert_array_equal(res.masks[0].numpy(), [[True, True], [False, False]])
    # the chosen query's probability counts, not its logit: q1 has the larger class-0 logit
    cls = torch.tensor([[1.0, 0.0], [2.0, 5.0]])
    res = head().condition_postprocess(cls, masks)
    assert res.scores.item() == pytest.approx(float(torch.softmax(cls[0], 0)[0]), rel=1e-5)
    np.testing.assert_array_equal(res.masks[0].numpy(), [[True, True], [False, False]])


@pytest.mark.parametrize('mask_thr, expected', [(None, [True, True, False, False]),  # default 0.5
                                                (0.5, [True, True, False, False]),
                                                (0.8, [True, False, False, False]),
                                                (0.2, [True, True, True, False])])
def test_condition_mask_threshold(mask_thr, expected):
    cls = cls_logits([0.90, 0.10])
    masks = torch.tensor([[[logit(0.9), logit(0.7), logit(0.3), logit(0.1)]]])
    cfg = {} if mask_thr is None else dict(mask_thr=mask_thr)
    res = head(**cfg).condition_postprocess(cls, masks)
    np.testing.assert_array_equal(res.masks[0, 0].numpy(), expected)
    np.testing.assert_array_equal(res.bboxes[0].numpy(), [0, 0, sum(expected), 1])


def test_condition_empty_mask_and_low_precision():
    cls, masks = _condition_example()
    res = head().condition_postprocess(cls.bfloat16(), torch.full_like(masks, -BIG))
    assert res.scores.dtype == torch.float32
    np.testing.assert_allclose(res.scores.numpy(), [0.60, 0.50, 0.30], rtol=1e-2)
    assert not res.masks.any() and (res.bboxes == 0).all() and res.bboxes.shape == (VOID, 4)


# ---------------------------------------------------------------------------------------------
# crop_to_image
def test_crop_to_image():
    torch.manual_seed(0)
    logits = torch.randn(3, 8, 8)
    meta = dict(img_shape=(6, 5, 3), ori_shape=(12, 15))
    # crop only
    out = XSAMFusionHead.crop_to_image(logits, meta, rescale=False)
    assert out.shape == (3, 6, 5) and out.dtype == torch.float32
    torch.testing.assert_close(out, logits[:, :6, :5])
    # crop, then bilinear resize to the original size
    out = XSAMFusionHead.crop_to_image(logits, meta, rescale=True)
    assert out.shape == (3, 12, 15)
    torch.testing.assert_close(
        out, F.interpolate(logits[None, :, :6, :5], size=(12, 15), mode='bilinear', align_corners=False)[0])
    # the padding never leaks in: a constant image region stays constant after resizing
    padded = torch.full((1, 8, 8), -BIG)
    padded[:, :6, :5] = 2.0
    assert (XSAMFusionHead.crop_to_image(padded, meta, rescale=True) == 2.0).all()
    # same size: rescale is the identity; low precision comes back as fp32
    same = dict(img_shape=(6, 5), ori_shape=(6, 5))
    out = XSAMFusionHead.crop_to_image(logits.bfloat16(), same, rescale=True)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, logits[:, :6, :5].bfloat16().float())
    # also callable on an instance (predict uses self.crop_to_image)
    torch.testing.assert_close(head().crop_to_image(logits, meta, False), logits[:, :6, :5])


def _interactive_head(**cfg):
    from mmxsam.models.seg_heads import XSAMFusionHead
    return XSAMFusionHead(num_things_classes=1, num_stuff_classes=0, test_cfg=dict(cfg))


def test_interactive_postprocess_box_iou_and_mask_iou():
    """Candidates are the queries scoring >= 0.5; the official rule picks the best box IoU with the prompt."""
    h = w = 20
    pred = torch.full((3, h, w), -10.0)
    pred[0, 0:10, 0:10] = 10.0  # small box around the prompt
    pred[1, 0:20, 0:20] = 10.0  # whole image
    pred[2, 15:20, 15:20] = 10.0  # far away
    cls = torch.tensor([[5.0, -5.0], [5.0, -5.0], [5.0, -5.0]])  # all confident
    prompt = torch.zeros(h, w, dtype=torch.bool)
    prompt[2:8, 2:8] = True
    out = _interactive_head().interactive_postprocess(cls, pred, prompt)
    assert out.masks.shape == (1, h, w) and out.masks[0].sum() == 100 and out.labels.tolist() == [0]
    out = _interactive_head(interactive_select='mask_iou').interactive_postprocess(cls, pred, prompt)
    assert out.masks[0].sum() == 100  # IoU 36/100 beats 36/400
    # no query reaches the threshold: the best-scoring one
    low = torch.tensor([[-5.0, 5.0], [0.0, 0.0], [-5.0, 5.0]])
    out = _interactive_head().interactive_postprocess(low, pred, prompt)
    assert out.masks[0].sum() == 400
    with pytest.raises(ValueError, match='interactive_select'):
        _interactive_head(interactive_select='nearest').interactive_postprocess(cls, pred, prompt)
