"""Fidelity: the full-size stage-1 and stage-3 decoders, connector and projectors against the reference
architecture, built on the meta device.

Already covered elsewhere (not repeated): SAM-L 308,278,272 parameters and its 64 x 64 x 1024 maps
(``test_models/test_backbones/test_sam_vit.py::test_sam_large_on_meta``), the connector's 10,499,072 parameters
and its [(512, 128²), (1024, 64²), (2048, 32²)] maps and the stage-1 total
(``test_configs/test_seg_configs.py::test_full_size_stage1_segmentor``), every stage-3 module's parameter count,
the 4.62B total and the 1753 visual tokens (``test_configs/test_xsam_configs.py::test_full_size_stage3_on_meta``).

Here: the decoder (pixel decoder + masked-attention transformer) is compared part by part with HF
transformers' ``Mask2FormerPixelDecoder`` / ``Mask2FormerTransformerModule`` built from the configuration the
official code uses (HF ``facebook/mask2former-swin-large-coco-panoptic`` defaults with
``feature_channels=[512, 1024, 2048]``, ``num_feature_levels=3``, 200 queries, reference §1.3), and the
projectors / sampler / preprocessing sizes are checked layer by layer against §1.4-§1.7.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401  (registration)
from mmdet.registry import MODELS

STAGE1 = 'configs/xsam/seg_finetune.py'
STAGE3 = 'configs/xsam/mixed.py'


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope='module')
def hf_decoder_counts():
    """Parameter counts of HF's Mask2Former pixel decoder and transformer module at X-SAM's full size."""
    from transformers import Mask2FormerConfig
    from transformers.models.mask2former.modeling_mask2former import (Mask2FormerPixelDecoder,
                                                                      Mask2FormerTransformerModule)
    # the HF defaults are the Swin-L COCO-panoptic values: hidden 256, 8 heads, 10 decoder layers (9 masked-attention
    # layers + the first prediction), ffn 2048, 6 deformable encoder layers with ffn 1024, strides 4/8/16/32,
    # common stride 4; X-SAM adds feature_channels / num_feature_levels and uses 200 queries
    cfg = Mask2FormerConfig(num_queries=200, use_timm_backbone=False, backbone_config=None)
    assert (cfg.hidden_dim, cfg.num_attention_heads, cfg.decoder_layers, cfg.dim_feedforward, cfg.encoder_layers,
            cfg.encoder_feedforward_dim, cfg.feature_strides, cfg.common_stride, cfg.mask_feature_size) == (
        256, 8, 10, 2048, 6, 1024, [4, 8, 16, 32], 4, 256)
    with torch.device('meta'):
        pixel_decoder = Mask2FormerPixelDecoder(cfg, feature_channels=[512, 1024, 2048])
        decoder = Mask2FormerTransformerModule(in_features=256, config=cfg)
    assert pixel_decoder.num_fpn_levels == 1  # the lateral conv sits on the stride-8 (128 x 128) map
    return dict(pixel_decoder=_count(pixel_decoder), decoder=_count(decoder))


def _head(path, repo_root):
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(repo_root, path)).model
    with torch.device('meta'):
        return cfg, MODELS.build(cfg.panoptic_head)


def _check_decoder_sizes(head):
    assert head.num_queries == 200 and head.num_transformer_feat_level == 3
    assert head.query_embed.weight.shape == head.query_feat.weight.shape == (200, 256)
    assert head.level_embed.weight.shape == (3, 256)
    layers = head.transformer_decoder.layers
    assert len(layers) == 9  # + the prediction from the raw queries = 10 predictions
    layer = layers[0]
    assert layer.cross_attn.embed_dims == layer.self_attn.embed_dims == 256
    assert layer.cross_attn.num_heads == layer.self_attn.num_heads == 8
    assert layer.ffn.layers[0][0].out_features == 2048
    enc = head.pixel_decoder.encoder.layers
    assert len(enc) == 6
    attn = enc[0].self_attn
    assert (attn.embed_dims, attn.num_heads, attn.num_levels, attn.num_points) == (256, 8, 3, 4)
    assert enc[0].ffn.layers[0][0].out_features == 1024
    # mask MLP 256 -> 256 -> 256 -> 256
    linears = [m for m in head.mask_embed.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 256)] * 3


def test_stage1_decoder_equals_hf_mask2former(repo_root, hf_decoder_counts):
    cfg, head = _head(STAGE1, repo_root)
    _check_decoder_sizes(head)
    assert head.cls_mode == 'linear' and head.cls_embed.weight.shape == (134, 256)  # 133 COCO classes + no-object
    assert _count(head.pixel_decoder) == hf_decoder_counts['pixel_decoder']
    transformer = _count(head) - _count(head.pixel_decoder) - _count(head.cls_embed)
    assert transformer == hf_decoder_counts['decoder']
    print(f"stage-1 decoder: pixel decoder {hf_decoder_counts['pixel_decoder']:,}, transformer "
          f"{hf_decoder_counts['decoder']:,}, class head {_count(head.cls_embed):,}")


def test_stage3_decoder_equals_hf_mask2former_plus_background(repo_root, hf_decoder_counts):
    cfg, head = _head(STAGE3, repo_root)
    _check_decoder_sizes(head)
    assert head.cls_mode == 'conditioned' and not hasattr(head, 'cls_embed')
    assert head.bg_embed.weight.shape == (1, 256) and head.logit_scale.shape == ()  # official bg_embeds [1, 256]
    assert _count(head) == hf_decoder_counts['pixel_decoder'] + hf_decoder_counts['decoder'] + 256 + 1


def _linears(module):
    return [(m.in_features, m.out_features, m.bias is not None) for m in module.modules()
            if isinstance(m, torch.nn.Linear)]


def test_stage3_projectors_sampler_and_input_sizes(repo_root):
    init_default_scope('mmdet')
    m = Config.fromfile(osp.join(repo_root, STAGE3)).model
    with torch.device('meta'):
        vision = MODELS.build(m.vision_projector)
        seg = MODELS.build(m.seg_projector)
        llm = MODELS.build(m.llm_projector)
        sampler = MODELS.build(m.region_sampler)
        neck = MODELS.build(m.neck)
    # depth-2 MLPs with GELU and biases (reference §1.5)
    assert _linears(vision) == [(1152, 3072, True), (3072, 3072, True)]
    assert _linears(seg) == [(4096, 3072, True), (3072, 3072, True)]
    assert _linears(llm) == [(3072, 256, True), (256, 256, True)]
    for proj in (vision, seg, llm):
        assert [type(x).__name__ for x in proj.model] == ['Linear', 'GELU', 'Linear']
    # region sampler: 256 points, max pooling, no parameters (§1.7)
    assert sampler.num_points == 256 and sampler.pool == 'max' and _count(sampler) == 0
    # connector: block maps 12/18/24 at scales 2/1/0.5, hidden 512, convs without bias (§1.2)
    assert list(m.backbone.out_indices)[:3] == [12, 18, 24] and m.backbone.out_indices[3] == 23  # seg projector: -2
    assert m.seg_projector_in_index == 3 and tuple(m.neck_in_indices) == (0, 1, 2)
    convs = [c for c in neck.modules() if isinstance(c, torch.nn.Conv2d)]
    assert len(convs) == 9 and all(c.bias is None for c in convs)
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs[:3]] == [
        (1024, 512, (1, 1)), (512, 512, (3, 3)), (512, 2048, (1, 1))]
    # preprocessing: SAM at 1024 (ImageNet mean/std), SigLIP2 at 384 (mean/std 0.5), §1.1 and §1.4
    pre = MODELS.build(m.data_preprocessor)
    assert pre.sam_size == 1024 and pre.encoder_size == 384
    assert pre.encoder_mean.flatten().tolist() == pre.encoder_std.flatten().tolist() == [127.5] * 3
    assert pre.mean.flatten().tolist() == pytest.approx([255 * v for v in (0.485, 0.456, 0.406)])
    assert pre.std.flatten().tolist() == pytest.approx([255 * v for v in (0.229, 0.224, 0.225)])
