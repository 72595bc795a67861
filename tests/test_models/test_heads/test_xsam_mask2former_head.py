"""XSAMMask2FormerHead: linear mode equals mmdet's Mask2FormerHead; conditioned mode by hand; bad inputs."""
import copy
import math

import pytest
import torch
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData

import mmxsam  # noqa: F401

C = 32
IN_CHANNELS = (16, 24, 40)
NUM_THINGS, NUM_STUFF = 3, 2


def head_cfg(cls_mode='linear', num_layers=2, num_queries=6):
    nc = NUM_THINGS + NUM_STUFF
    ffn = dict(embed_dims=C, feedforward_channels=64, num_fcs=2, ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))
    return ConfigDict(
        type='XSAMMask2FormerHead', cls_mode=cls_mode, in_channels=list(IN_CHANNELS), strides=[8, 16, 32],
        feat_channels=C, out_channels=C, num_things_classes=NUM_THINGS if cls_mode == 'linear' else 0,
        num_stuff_classes=NUM_STUFF if cls_mode == 'linear' else 0, num_queries=num_queries,
        num_transformer_feat_level=3,
        pixel_decoder=dict(type='XSAMPixelDecoder', num_outs=3, norm_cfg=dict(type='GN', num_groups=8),
                           act_cfg=dict(type='ReLU'),
                           encoder=dict(num_layers=1, layer_cfg=dict(
                               self_attn_cfg=dict(embed_dims=C, num_heads=2, num_levels=3, num_points=2,
                                                  dropout=0.0, batch_first=True), ffn_cfg=ffn)),
                           positional_encoding=dict(num_feats=C // 2, normalize=True)),
        enforce_decoder_input_project=False, positional_encoding=dict(num_feats=C // 2, normalize=True),
        transformer_decoder=dict(return_intermediate=True, num_layers=num_layers, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=C, num_heads=2, dropout=0.0, batch_first=True),
            cross_attn_cfg=dict(embed_dims=C, num_heads=2, dropout=0.0, batch_first=True), ffn_cfg=ffn),
            init_cfg=None),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0, reduction='mean',
                      class_weight=[1.0] * nc + [0.1] if cls_mode == 'linear' else None),
        loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, reduction='mean', naive_dice=True,
                       eps=1.0, loss_weight=5.0),
        train_cfg=dict(num_points=64, oversample_ratio=3.0, importance_sample_ratio=0.75,
                       assigner=dict(type='HungarianAssigner', match_costs=[
                           dict(type='ClassificationCost', weight=2.0),
                           dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                           dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
                       sampler=dict(type='MaskPseudoSampler')),
        test_cfg=dict(panoptic_on=True, semantic_on=False, instance_on=True, max_per_image=10, iou_thr=0.8,
                      filter_low_score=True))


def feats(batch=2, size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size // s, size // s, generator=g) for c, s in zip(IN_CHANNELS, (8, 16, 32))]


def sample(labels, boxes, size=128, stuff=None):
    """A data sample with square instance masks at ``boxes`` (x0, y0, x1, y1) and optional stuff map."""
    masks = torch.zeros(len(labels), size, size, dtype=torch.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        masks[k, y0:y1, x0:x1] = 1
    s = DetDataSample(metainfo=dict(batch_input_shape=(size, size), img_shape=(size, size), ori_shape=(size, size),
                                    pad_shape=(size, size)))
    s.gt_instances = InstanceData(labels=torch.tensor(labels, dtype=torch.long),
                                  masks=BitmapMasks(masks.numpy(), size, size))
    if stuff is not None:
        s.gt_sem_seg = PixelData(sem_seg=stuff[None])
    return s


def batch_samples():
    stuff = torch.full((128, 128), 255, dtype=torch.long)
    stuff[96:] = NUM_THINGS  # first stuff class
    return [sample([0, 2], [(8, 8, 40, 40), (60, 20, 100, 70)], stuff=stuff),
            sample([1], [(30, 30, 90, 90)], stuff=torch.full((128, 128), NUM_THINGS + 1, dtype=torch.long))]


def test_forward_shapes_and_mask_features_at_stride_8():
    head = MODELS.build(head_cfg())
    cls_list, mask_list = head(feats(), None)
    assert len(cls_list) == len(mask_list) == 3  # num_layers + 1
    assert cls_list[-1].shape == (2, 6, NUM_THINGS + NUM_STUFF + 1)
    assert mask_list[-1].shape == (2, 6, 16, 16)  # 128 / 8


def test_linear_mode_equals_mmdet_mask2former_head():
    """Same weights, same random points: identical predictions and losses to mmdet's head fed [c8, c8, c16, c32]."""
    ours = MODELS.build(head_cfg())
    ref_cfg = copy.deepcopy(head_cfg())
    ref_cfg.pop('cls_mode')
    ref_cfg.type = 'Mask2FormerHead'
    ref_cfg.in_channels = [IN_CHANNELS[0]] + list(IN_CHANNELS)
    ref_cfg.pixel_decoder.type = 'MSDeformAttnPixelDecoder'
    ref_cfg.pixel_decoder.strides = [8, 8, 16, 32]
    ref = MODELS.build(ref_cfg)
    assert isinstance(ref, Mask2FormerHead)
    ref.load_state_dict(ours.state_dict())
    x = feats()
    ours_out = ours(x, None)
    ref_out = ref([x[0]] + x, None)
    for a, b in zip(ours_out[0] + ours_out[1], ref_out[0] + ref_out[1]):
        torch.testing.assert_close(a, b)
    torch.manual_seed(7)
    loss_ours = ours.loss(x, batch_samples())
    torch.manual_seed(7)
    loss_ref = ref.loss([x[0]] + x, batch_samples())
    assert set(loss_ours) == set(loss_ref) == {'loss_cls', 'loss_mask', 'loss_dice', 'd0.loss_cls', 'd0.loss_mask',
                                                'd0.loss_dice', 'd1.loss_cls', 'd1.loss_mask', 'd1.loss_dice'}
    for k in loss_ours:
        torch.testing.assert_close(loss_ours[k], loss_ref[k])


def test_conditioned_logits_by_hand():
    head = MODELS.build(head_cfg('conditioned'))
    assert head.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert not hasattr(head, 'cls_embed')
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 6, C, generator=g)
    cond = torch.randn(2, 3, C, generator=g)
    cmask = torch.tensor([[True, True, True], [True, False, False]])
    logits = head.classify(q, cond, cmask)
    assert logits.shape == (2, 6, 4)
    bg = head.bg_embed.weight[0]
    for b in range(2):
        for qi in range(6):
            classes = list(cond[b]) + [bg]
            for n, c in enumerate(classes):
                expected = (1 / 0.07) * torch.nn.functional.cosine_similarity(q[b, qi], c, dim=0)
                if n < 3 and not cmask[b, n]:
                    assert logits[b, qi, n] == torch.finfo(logits.dtype).min
                else:
                    assert logits[b, qi, n].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)
    probs = logits.softmax(-1)
    assert torch.all(probs[1, :, 1:3] == 0)  # padded slots get no probability


def test_conditioned_loss_with_variable_condition_counts_and_backward():
    head = MODELS.build(head_cfg('conditioned'))
    cond = torch.randn(2, 3, C, requires_grad=True)
    cmask = torch.tensor([[True, True, True], [True, False, False]])
    samples = [sample([0, 2], [(8, 8, 40, 40), (60, 20, 100, 70)]), sample([0], [(30, 30, 90, 90)])]
    losses = head.loss(feats(), samples, conditions=cond, condition_mask=cmask, seg_embeds=torch.randn(2, C))
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert cond.grad is not None and cond.grad.abs().sum() > 0  # the conditions are trained through the head
    assert head.logit_scale.grad is not None and head.bg_embed.weight.grad is not None


def test_conditioned_label_outside_conditions_names_the_sample():
    head = MODELS.build(head_cfg('conditioned'))
    cond = torch.randn(2, 3, C)
    cmask = torch.tensor([[True, True, True], [True, False, False]])
    samples = [sample([0], [(8, 8, 40, 40)]), sample([2], [(30, 30, 90, 90)])]
    with pytest.raises(ValueError, match=r'sample 1: ground-truth labels \[2\] must index its 1 conditions'):
        head.loss(feats(), samples, conditions=cond, condition_mask=cmask)


def test_seg_embeds_enter_the_queries():
    head = MODELS.build(head_cfg('conditioned')).eval()
    x, cond = feats(), torch.randn(2, 2, C)
    a = head(x, None, conditions=cond)[0][-1]
    b = head(x, None, conditions=cond, seg_embeds=torch.randn(2, 1, C))[0][-1]
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match='seg_embeds must have 32 channels'):
        head(x, None, conditions=cond, seg_embeds=torch.randn(2, 5))


def test_image_without_instances_keeps_the_graph_connected():
    head = MODELS.build(head_cfg())
    empty = sample([], [])
    empty.gt_instances = InstanceData(labels=torch.zeros(0, dtype=torch.long),
                                      masks=BitmapMasks(torch.zeros(0, 128, 128).numpy(), 128, 128))
    losses = head.loss(feats(batch=1), [empty])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert head.mask_embed[0].weight.grad is not None


def test_bf16_predictions_are_matched_in_fp32():
    head = MODELS.build(head_cfg())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(feats(), batch_samples())
    assert all(torch.isfinite(v.float()) for v in losses.values())


def test_predict_upsamples_to_the_padded_input():
    head = MODELS.build(head_cfg()).eval()
    cls, masks = head.predict(feats(), batch_samples())
    assert cls.shape == (2, 6, NUM_THINGS + NUM_STUFF + 1) and masks.shape == (2, 6, 128, 128)


@pytest.mark.parametrize('mode, kwargs, message', [
    ('linear', dict(conditions=torch.zeros(2, 1, C)), 'takes no conditions'),
    ('conditioned', dict(), 'needs `conditions`'),
    ('conditioned', dict(conditions=torch.zeros(2, 1, 7)), r'conditions must be \(B=2, N, C=32\)'),
    ('conditioned', dict(conditions=torch.zeros(2, 2, C), condition_mask=torch.ones(2, 3, dtype=torch.bool)),
     'condition_mask must be'),
])
def test_bad_condition_inputs(mode, kwargs, message):
    head = MODELS.build(head_cfg(mode))
    with pytest.raises(ValueError, match=message):
        head(feats(), None, **kwargs)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match='cls_mode must be one of'):
        MODELS.build(dict(head_cfg(), cls_mode='cosine'))
    cfg = head_cfg('conditioned')
    cfg.loss_cls.class_weight = [1.0, 0.1]
    with pytest.raises(ValueError, match='set loss_cls.class_weight=None'):
        MODELS.build(cfg)
    cfg = head_cfg()
    cfg.loss_cls.class_weight = [1.0, 0.1]
    with pytest.raises(ValueError, match='class_weight has 2 entries, expected num_classes \\+ 1 = 6'):
        MODELS.build(cfg)
    cfg = head_cfg()
    cfg.pixel_decoder.encoder.layer_cfg.self_attn_cfg.num_levels = 2
    with pytest.raises((ValueError, AssertionError)):
        MODELS.build(cfg)


def test_zero_area_ground_truth_mask_gives_finite_losses():
    head = MODELS.build(head_cfg())
    s = sample([0, 1], [(8, 8, 40, 40), (50, 50, 50, 50)])  # the second box is empty: a mask of size 0
    assert s.gt_instances.masks.to_ndarray()[1].sum() == 0
    losses = head.loss(feats(batch=1), [s])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


def test_odd_feature_sizes():
    """Maps of odd size (e.g. a 136 px input at strides 8/16/32 rounded up) go through the whole head."""
    head = MODELS.build(head_cfg()).eval()
    x = [torch.randn(1, c, s, s) for c, s in zip(IN_CHANNELS, (17, 9, 5))]
    cls, masks = head(x, None)
    assert masks[-1].shape == (1, 6, 17, 17) and cls[-1].shape == (1, 6, NUM_THINGS + NUM_STUFF + 1)
