"""XSAMSegmentor: tiny ResNet-18 + mmdet Mask2FormerHead + XSAMFusionHead, loss and predict on CPU."""
import copy

import pytest
import torch
from mmdet.registry import METRICS, MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks, mask2bbox
from mmengine.config import ConfigDict
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

import mmxsam.models  # noqa: F401  (registration)
from mmxsam.models.detectors import XSAMSegmentor

NUM_THINGS, NUM_STUFF = 2, 1
NUM_CLASSES = NUM_THINGS + NUM_STUFF
FEAT, QUERIES, SIZE = 32, 8, 64


def segmentor_cfg(neck: bool) -> dict:
    in_channels = [FEAT] * 4 if neck else [64, 128, 256, 512]
    attn = dict(embed_dims=FEAT, num_heads=4, dropout=0.0, batch_first=True)
    ffn = dict(embed_dims=FEAT, feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
               act_cfg=dict(type='ReLU', inplace=True))
    return dict(
        type='XSAMSegmentor',
        data_preprocessor=dict(
            type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True, pad_size_divisor=32, pad_mask=True, mask_pad_value=0, pad_seg=True,
            seg_pad_value=255),
        backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                      norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='pytorch',
                      init_cfg=None),
        neck=dict(type='ChannelMapper', in_channels=[64, 128, 256, 512], out_channels=FEAT,
                  kernel_size=1, num_outs=4) if neck else None,
        panoptic_head=dict(
            type='Mask2FormerHead',
            in_channels=in_channels,
            strides=[4, 8, 16, 32],
            feat_channels=FEAT,
            out_channels=FEAT,
            num_things_classes=NUM_THINGS,
            num_stuff_classes=NUM_STUFF,
            num_queries=QUERIES,
            num_transformer_feat_level=3,
            pixel_decoder=dict(
                type='MSDeformAttnPixelDecoder',
                num_outs=3,
                norm_cfg=dict(type='GN', num_groups=8),
                act_cfg=dict(type='ReLU'),
                encoder=dict(num_layers=1, layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=FEAT, num_heads=4, num_levels=3, num_points=4,
                                       dropout=0.0, batch_first=True),
                    ffn_cfg=ffn)),
                positional_encoding=dict(num_feats=FEAT // 2, normalize=True)),
            enforce_decoder_input_project=False,
            positional_encoding=dict(num_feats=FEAT // 2, normalize=True),
            transformer_decoder=dict(
                return_intermediate=True,
                num_layers=2,
                layer_cfg=dict(self_attn_cfg=attn, cross_attn_cfg=attn, ffn_cfg=ffn),
                init_cfg=None),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0, reduction='mean',
                          class_weight=[1.0] * NUM_CLASSES + [0.1]),
            loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
            loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                           naive_dice=True, eps=1.0, loss_weight=5.0)),
        panoptic_fusion_head=dict(type='XSAMFusionHead', num_things_classes=NUM_THINGS,
                                  num_stuff_classes=NUM_STUFF),
        train_cfg=dict(
            num_points=64,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(type='HungarianAssigner', match_costs=[
                dict(type='ClassificationCost', weight=2.0),
                dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='MaskPseudoSampler')),
        test_cfg=dict(panoptic_on=True, instance_on=True, semantic_on=True, max_per_image=QUERIES,
                      object_mask_thr=0.0, iou_thr=0.8, fg_only_label=True, score_weighted_area=True,
                      strict_iou_thr=True, instance_things_only=False, instance_score_thr=0.0),
        init_cfg=None)


def build(cfg: dict) -> XSAMSegmentor:
    """Build as a config file would: a ``ConfigDict`` (mmdet's MaskFormer calls
    ``.deepcopy()`` on its sub-configs) under ``default_scope = 'mmdet'`` (the data
    preprocessor is built through mmengine's registry, which then resolves mmdet names)."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(ConfigDict(cfg))


def make_sample(boxes, labels, stuff=True, size=(SIZE, SIZE)) -> DetDataSample:
    """A synthetic image with box-shaped thing instances on a stuff (class 2) background.

    gt_sem_seg: things' labels on their pixels, 2 (stuff) or 255 (VOID) elsewhere; one VOID strip.
    """
    h, w = size
    masks = torch.zeros((len(boxes), h, w), dtype=torch.bool)
    sem = torch.full((1, h, w), NUM_THINGS if stuff else 255, dtype=torch.uint8)
    for i, ((x1, y1, x2, y2), label) in enumerate(zip(boxes, labels)):
        masks[i, y1:y2, x1:x2] = True
        sem[0, y1:y2, x1:x2] = label
    sem[0, :, :2] = 255
    sample = DetDataSample(metainfo=dict(img_id=0, img_shape=size, ori_shape=size, scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        labels=torch.tensor(labels, dtype=torch.long),
        masks=BitmapMasks(masks.numpy().astype('uint8'), h, w),
        bboxes=mask2bbox(masks))
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    return sample


def batch(samples) -> dict:
    """Raw batch -> data_preprocessor (normalise, pad to /32, pad masks and seg)."""
    torch.manual_seed(0)
    inputs = [torch.randint(0, 256, (3, *s.metainfo['img_shape']), dtype=torch.uint8) for s in samples]
    return dict(inputs=inputs, data_samples=copy.deepcopy(samples))


@pytest.fixture(scope='module', params=[False, True], ids=['no_neck', 'channel_mapper'])
def model(request) -> XSAMSegmentor:
    torch.manual_seed(0)
    m = build(segmentor_cfg(neck=request.param))
    m.init_weights()
    return m


@pytest.fixture(scope='module')
def samples():
    return [make_sample([(5, 6, 30, 28), (34, 30, 60, 60)], [0, 1]),
            make_sample([(10, 10, 40, 50)], [1])]


def _check_losses(losses, n_dec_layers=3):
    expected = {'loss_cls', 'loss_mask', 'loss_dice'}
    expected |= {f'd{i}.{k}' for i in range(n_dec_layers - 1) for k in ('loss_cls', 'loss_mask', 'loss_dice')}
    assert set(losses) == expected
    for v in losses.values():
        assert torch.isfinite(v) and v.requires_grad


def test_neck_feeds_head(model, samples):
    data = model.data_preprocessor(batch(samples), True)
    feats = model.extract_feat(data['inputs'])
    assert isinstance(feats, tuple) and len(feats) == 4
    expected_c = [FEAT] * 4 if model.with_neck else [64, 128, 256, 512]
    for f, c, s in zip(feats, expected_c, (4, 8, 16, 32)):
        assert f.shape == (2, c, SIZE // s, SIZE // s)
    cls, masks = model._forward(data['inputs'], data['data_samples'])
    assert len(cls) == len(masks) == 3  # prediction before the first layer + 2 decoder layers
    assert cls[-1].shape == (2, QUERIES, NUM_CLASSES + 1) and masks[-1].shape == (2, QUERIES, SIZE // 4, SIZE // 4)


def test_loss_and_backward(model, samples):
    model.train()
    data = model.data_preprocessor(batch(samples), True)
    losses = model(**data, mode='loss')
    _check_losses(losses)
    model.zero_grad()
    sum(losses.values()).backward()
    grads = [p.grad for p in model.panoptic_head.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('with_stuff', [True, False], ids=['stuff_only', 'nothing'])
def test_loss_without_instances(model, samples, with_stuff):
    """An image with no things (alone, and beside a normal one) gives finite, connected losses."""
    model.train()
    empty = make_sample([], [], stuff=with_stuff)
    for batch_samples in ([empty, copy.deepcopy(empty)], [samples[0], empty]):
        data = model.data_preprocessor(batch(batch_samples), True)
        losses = model(**data, mode='loss')
        _check_losses(losses)
        model.zero_grad()
        sum(losses.values()).backward()
        cls_grad = model.panoptic_head.cls_embed.weight.grad
        assert cls_grad is not None and torch.isfinite(cls_grad).all() and cls_grad.abs().sum() > 0


def test_predict(model, samples):
    model.eval()
    # second image smaller than the batch: padding must be cropped away
    small = make_sample([(4, 4, 20, 30)], [0], size=(48, 40))
    data = model.data_preprocessor(batch([samples[0], small]), False)
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert len(results) == 2
    for res, (h, w) in zip(results, [(SIZE, SIZE), (48, 40)]):
        assert res.metainfo['batch_input_shape'] == (SIZE, SIZE)
        pan = res.pred_panoptic_seg.sem_seg
        assert pan.shape == (1, h, w) and pan.dtype == torch.int32
        sem = res.pred_sem_seg.sem_seg
        assert sem.shape == (1, h, w) and sem.dtype == torch.int64
        assert 0 <= sem.min() and sem.max() < NUM_CLASSES
        ins = res.pred_instances
        assert ins.masks.shape == (QUERIES, h, w) and ins.masks.dtype == torch.bool  # top-Q pairs
        assert ins.labels.shape == ins.scores.shape == (QUERIES, ) and ins.bboxes.shape == (QUERIES, 4)
        assert ((ins.scores >= 0) & (ins.scores <= 1)).all()

    # the semantic output goes straight into mmdet's SemSegMetric
    evaluator = Evaluator(METRICS.build(dict(type='SemSegMetric')))
    evaluator.dataset_meta = dict(classes=('thing_a', 'thing_b', 'stuff'))
    evaluator.process(data_samples=results, data_batch=None)
    metrics = evaluator.evaluate(2)
    assert set(metrics) == {'aAcc', 'mIoU', 'mAcc'} and all(0 <= v <= 100 for v in metrics.values())


def test_predict_switches(samples):
    """test_cfg decides which predictions are filled; mmdet's defaults give panoptic only."""
    cfg = segmentor_cfg(neck=False)
    cfg['test_cfg'] = dict(panoptic_on=False, instance_on=False, semantic_on=True)
    model = build(cfg).eval()
    data = model.data_preprocessor(batch(samples), False)
    with torch.no_grad():
        res = model(**data, mode='predict')[0]
    assert 'pred_sem_seg' in res and 'pred_panoptic_seg' not in res and 'pred_instances' not in res
