"""The official X-SAM checkpoint converter (mmxsam/utils/official_checkpoint.py and its CLI).

The released checkpoints are too large for CI, so the official-format state dict is synthesised from the
tiny mmxsam models with ``mmxsam_to_official``; its decoder names and shapes are checked against HF
transformers' Mask2Former modules built at the same tiny sizes (X-SAM vendors that code unchanged in its
parameter names), then official -> mmxsam must give back the original exactly."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401  (registration)
from mmxsam.utils.official_checkpoint import detect_official_stage, mmxsam_to_official, official_to_mmxsam

CLI = 'tools/model_converters/xsam_official_to_mmxsam.py'

# official prefixes (reference §6)
OFFICIAL_PATTERNS = [
    r'llm\.model\..+', r'llm\.lm_head\..+', r'visual_encoder\.vision_model\..+',
    r'visual_projector\.model\.[02]\.(weight|bias)', r'seg_projector\.model\.[02]\.(weight|bias)',
    r'llm_projector\.model\.[02]\.(weight|bias)', r'seg_connector\.model\.[0-2]\.model\.[0-5]\.(weight|bias)',
    r'segmentor\.encoder\.(patch_embed|pos_embed|layers\.\d+|neck)(\..+)?', r'segmentor\.pixel_decoder\..+',
    r'segmentor\.decoder\.(queries_embedder|queries_features|level_embed|decoder\.layers\.\d+|decoder\.layernorm|'
    r'decoder\.mask_predictor\.mask_embedder)\..+', r'segmentor\.logit_scale', r'bg_embeds\.weight',
    r'segmentor\.class_predictor\.(weight|bias)'
]


def _build(repo_root, cfg_file, tokenizer_dir=None):
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(repo_root, cfg_file)).model
    if tokenizer_dir is not None:
        cfg.llm.tokenizer.name_or_path = tokenizer_dir
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    with torch.no_grad():  # distinct values everywhere, so a swapped or mis-split tensor shows
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.copy_(torch.randn_like(p))
    return model


@pytest.fixture(scope='module')
def model(repo_root, tiny_tokenizer_dir):
    return _build(repo_root, 'configs/_base_/models/xsam_tiny.py', tiny_tokenizer_dir)


@pytest.fixture(scope='module')
def segmentor(repo_root):
    return _build(repo_root, 'configs/_base_/models/xsam_segmentor_tiny.py')


@pytest.fixture(scope='module')
def official(model):
    sd, report = mmxsam_to_official(model.state_dict())
    assert report['unmatched'] == [], report['reasons']
    return sd


def _assert_same(a, b):
    assert set(a) == set(b), (sorted(set(a) - set(b))[:10], sorted(set(b) - set(a))[:10])
    for k in a:
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


def _hf_decoder_state(feature_channels=(32, 64, 128)):
    """HF Mask2Former pixel decoder + transformer module at the tiny sizes, keyed as X-SAM's segmentor."""
    from transformers import Mask2FormerConfig
    from transformers.models.mask2former.modeling_mask2former import (Mask2FormerPixelDecoder,
                                                                      Mask2FormerTransformerModule)
    # tiny: 64-d, 4 heads, 2 encoder layers (ffn 128), 3 masked-attention layers (+1 prediction, ffn 256),
    # 20 queries; strides 4/8/16 with common stride 2 give X-SAM's single FPN level on the finest map
    cfg = Mask2FormerConfig(feature_size=64, mask_feature_size=64, hidden_dim=64, encoder_layers=2,
                            encoder_feedforward_dim=128, decoder_layers=4, dim_feedforward=256,
                            num_attention_heads=4, num_queries=20, feature_strides=[4, 8, 16], common_stride=2,
                            use_timm_backbone=False, backbone_config=None)
    pixel_decoder = Mask2FormerPixelDecoder(cfg, feature_channels=list(feature_channels))
    decoder = Mask2FormerTransformerModule(in_features=64, config=cfg)
    out = {f'segmentor.pixel_decoder.{k}': v for k, v in pixel_decoder.state_dict().items()}
    out.update({f'segmentor.decoder.{k}': v for k, v in decoder.state_dict().items()})
    return out, pixel_decoder, decoder


def test_official_names_follow_reference(official, model):
    for k in official:
        assert any(re.fullmatch(p, k) for p in OFFICIAL_PATTERNS), k
    groups = {k.split('.')[0] for k in official}
    assert groups == {'llm', 'visual_encoder', 'visual_projector', 'seg_projector', 'llm_projector',
                      'seg_connector', 'segmentor', 'bg_embeds'}
    assert official['segmentor.logit_scale'].shape == (1, )  # nn.Parameter(torch.ones([1]) * ...) officially
    assert official['bg_embeds.weight'].shape == (1, 64)
    assert 'llm.lm_head.weight' in official and 'llm.model.embed_tokens.weight' in official
    assert detect_official_stage(official) == 3
    # the LLM, SigLIP and SAM encoder are HF modules on both sides: only the prefix changes
    hf_names = {f'segmentor.encoder.{k}' for k in model.backbone.encoder.state_dict()}
    assert hf_names == {k for k in official if k.startswith('segmentor.encoder.')}


def test_decoder_names_and_shapes_match_hf_mask2former(official):
    hf, _, _ = _hf_decoder_state()
    ours = {k: v for k, v in official.items() if k.startswith(('segmentor.pixel_decoder.', 'segmentor.decoder.'))}
    assert set(ours) == set(hf), (sorted(set(ours) - set(hf)), sorted(set(hf) - set(ours)))
    for k in hf:
        assert ours[k].shape == hf[k].shape, (k, ours[k].shape, hf[k].shape)


def test_self_attention_split_is_functional(official):
    """HF's Mask2FormerAttention loaded with the split q/k/v computes what mmdet's packed MHA computes."""
    from transformers.models.mask2former.modeling_mask2former import Mask2FormerAttention
    pre = 'segmentor.decoder.decoder.layers.1.self_attn.'
    hf = Mask2FormerAttention(embed_dim=64, num_heads=4, is_decoder=True).eval()
    hf.load_state_dict({k[len(pre):]: v for k, v in official.items() if k.startswith(pre)}, strict=True)
    back, _ = official_to_mmxsam({k: v for k, v in official.items() if k.startswith(pre)})
    mpre = 'panoptic_head.transformer_decoder.layers.1.self_attn.attn.'
    mha = torch.nn.MultiheadAttention(64, 4).eval()  # as mmcv's MultiheadAttention wraps it (sequence first)
    mha.load_state_dict({k[len(mpre):]: v for k, v in back.items()}, strict=True)
    x, pos = torch.randn(5, 2, 64), torch.randn(5, 2, 64)  # (queries, batch, channels), as HF's decoder
    with torch.no_grad():
        ref = mha(x + pos, x + pos, x, need_weights=False)[0]
        out = hf(hidden_states=x, position_embeddings=pos)[0]
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)  # float32 summation order


def test_round_trip_stage3(official, model):
    sd = model.state_dict()
    back, report = official_to_mmxsam(official)
    assert report['unmatched'] == [] and report['converted'] == len(official)
    assert report['detected_stage'] == 3
    _assert_same(back, sd)
    again, report2 = mmxsam_to_official(back)
    assert report2['unmatched'] == []
    _assert_same(again, official)  # official -> mmxsam -> official
    result = model.load_state_dict(back, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # explicit stage 3 accepts the whole layout
    _, report3 = official_to_mmxsam(official, stage=3)
    assert report3['unmatched'] == []


def test_unknown_and_incomplete_keys_are_reported(official):
    bad = dict(official)
    bad['segmentor.shared_image_embedding.positional_embedding'] = torch.zeros(2, 8)  # frozen, no mmxsam twin
    bad['segmentor.pixel_decoder.adapter_0.0.weight'] = torch.zeros(1)  # HF counts adapters from 1
    del bad['segmentor.decoder.decoder.layers.0.self_attn.v_proj.weight']  # half a q/k/v group
    out, report = official_to_mmxsam(bad)
    assert set(report['unmatched']) == {
        'segmentor.shared_image_embedding.positional_embedding', 'segmentor.pixel_decoder.adapter_0.0.weight',
        'segmentor.decoder.decoder.layers.0.self_attn.q_proj.weight',
        'segmentor.decoder.decoder.layers.0.self_attn.k_proj.weight'}
    assert report['converted'] + len(report['unmatched']) == len(bad)  # nothing dropped silently
    assert 'panoptic_head.transformer_decoder.layers.0.self_attn.attn.in_proj_weight' not in out
    _, report = mmxsam_to_official({'panoptic_head.foo': torch.zeros(1), 'llm.lm_head.weight': torch.zeros(1)})
    assert sorted(report['unmatched']) == ['llm.lm_head.weight', 'panoptic_head.foo']


def test_stage1_layout(segmentor):
    sd = segmentor.state_dict()
    assert 'panoptic_head.cls_embed.weight' in sd
    official, report = mmxsam_to_official(sd, stage=1)
    assert report['unmatched'] == []
    assert official['segmentor.class_predictor.weight'].shape == (11 + 1, 64)
    assert official['segmentor.class_predictor.bias'].shape == (11 + 1, )
    assert {k.split('.')[0] for k in official} == {'segmentor', 'seg_connector'}
    assert 'segmentor.logit_scale' not in official
    assert detect_official_stage(official) == 1
    for k in official:
        assert any(re.fullmatch(p, k) for p in OFFICIAL_PATTERNS), k
    back, report = official_to_mmxsam(official, stage=1)
    assert report['unmatched'] == []
    _assert_same(back, sd)
    segmentor.load_state_dict(back, strict=True)
    # the stage-1 head is not part of a stage-3 model: reported, not converted
    _, report = official_to_mmxsam(official, stage=3)
    assert sorted(report['unmatched']) == ['segmentor.class_predictor.bias', 'segmentor.class_predictor.weight']


def test_stage2_layout(official, model):
    s2 = {k: v for k, v in official.items() if k.startswith(('visual_projector.', 'seg_projector.'))}
    assert len(s2) == 8 and detect_official_stage(s2) == 2
    back, report = official_to_mmxsam(s2, stage=2)
    assert report['unmatched'] == [] and report['converted'] == 8
    assert {k.rsplit('.model.', 1)[0] for k in back} == {'vision_projector', 'seg_projector'}
    result = model.load_state_dict(back, strict=False)
    assert not result.unexpected_keys
    sd = model.state_dict()
    for k, v in back.items():
        assert torch.equal(sd[k], v)
    # from the full mmxsam state dict, --stage 2 keeps only the projectors and reports the rest
    only, report = mmxsam_to_official(sd, stage=2)
    _assert_same(only, s2)
    assert len(report['unmatched']) == len(sd) - 8


def test_cli_round_trip(official, model, tmp_path, repo_root):
    src = tmp_path / 'pytorch_model.bin'
    torch.save(official, src)
    mid, dst = tmp_path / 'mmxsam.pth', tmp_path / 'official.pth'
    run = dict(cwd=repo_root, capture_output=True, text=True, check=True)
    res = subprocess.run([sys.executable, CLI, str(src), str(mid), '--stage', '3', '--strict'], **run)
    assert '0 unmatched' in res.stdout
    ckpt = torch.load(mid, map_location='cpu', weights_only=True)
    assert ckpt['meta']['converted_from'] == str(src)
    _assert_same(ckpt['state_dict'], model.state_dict())
    subprocess.run([sys.executable, CLI, str(mid), str(dst), '--reverse'], **run)
    _assert_same(torch.load(dst, map_location='cpu', weights_only=True)['state_dict'], official)
    # --strict refuses unmatched keys
    bad = dict(official, **{'segmentor.unknown': torch.zeros(1)})
    torch.save(bad, src)
    res = subprocess.run([sys.executable, CLI, str(src), str(tmp_path / 'x.pth'), '--strict'], cwd=repo_root,
                         capture_output=True, text=True)
    assert res.returncode == 1 and 'segmentor.unknown' in res.stdout
    assert not (tmp_path / 'x.pth').exists()


def test_deformable_attention_is_functional(official):
    """HF's pixel-decoder deformable attention loaded with the official weights computes what mmcv's
    MultiScaleDeformableAttention computes with the converted ones (same parameter layout)."""
    from mmcv.ops import MultiScaleDeformableAttention
    from transformers.models.mask2former.modeling_mask2former import \
        Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention as HFDeformAttn
    pre = 'segmentor.pixel_decoder.encoder.layers.1.self_attn.'
    sub = {k: v for k, v in official.items() if k.startswith(pre)}
    hf = HFDeformAttn(embed_dim=64, num_heads=4, n_levels=3, n_points=4).eval()
    hf.load_state_dict({k[len(pre):]: v for k, v in sub.items()}, strict=True)
    back, report = official_to_mmxsam(sub)
    assert report['unmatched'] == []
    mpre = 'panoptic_head.pixel_decoder.encoder.layers.1.self_attn.'
    mm = MultiScaleDeformableAttention(embed_dims=64, num_heads=4, num_levels=3, num_points=4, dropout=0.0,
                                      batch_first=True).eval()
    mm.load_state_dict({k[len(mpre):]: v for k, v in back.items()}, strict=True)
    shapes = [(2, 2), (4, 4), (8, 8)]
    n = sum(h * w for h, w in shapes)
    x, pos = torch.randn(2, n, 64), torch.randn(2, n, 64)
    ref_points = torch.rand(2, n, 3, 2)
    spatial = torch.tensor(shapes, dtype=torch.long)
    start = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    with torch.no_grad():
        out = hf(hidden_states=x, encoder_hidden_states=x, position_embeddings=pos, reference_points=ref_points,
                 spatial_shapes_list=shapes, level_start_index=start)[0]
        ref = mm(query=x, value=x, identity=torch.zeros_like(x), query_pos=pos, reference_points=ref_points,
                 spatial_shapes=spatial, level_start_index=start)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def _strip(state, prefix):
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def test_decoder_layer_is_functional(official, model):
    """A whole masked-attention decoder layer (norm order, FFN, both attentions): HF's layer loaded with the
    official keys equals mmxsam's (mmdet) layer."""
    from transformers.models.mask2former.modeling_mask2former import Mask2FormerMaskedAttentionDecoderLayer
    _, _, hf_module = _hf_decoder_state()
    hf = Mask2FormerMaskedAttentionDecoderLayer(hf_module.decoder.config).eval()
    hf.load_state_dict(_strip(official, 'segmentor.decoder.decoder.layers.2.'), strict=True)
    ours = model.panoptic_head.transformer_decoder.layers[2].eval()
    q, qpos = torch.randn(2, 20, 64), torch.randn(2, 20, 64)
    mem, mpos = torch.randn(2, 30, 64), torch.randn(2, 30, 64)
    with torch.no_grad():
        ref = ours(query=q, key=mem, value=mem, query_pos=qpos, key_pos=mpos, cross_attn_mask=None,
                   self_attn_mask=None, key_padding_mask=None)
        t = lambda x: x.transpose(0, 1)  # noqa: E731  HF's decoder runs sequence first
        out = hf(hidden_states=t(q), level_index=0, position_embeddings=[t(mpos)], query_position_embeddings=t(qpos),
                 encoder_hidden_states=[t(mem)], encoder_attention_mask=None)[0]
    torch.testing.assert_close(t(out), ref, atol=1e-4, rtol=1e-4)


def test_pixel_decoder_encoder_layer_is_functional(official, model):
    """A whole deformable encoder layer of the pixel decoder: HF's layer with the official keys equals
    mmxsam's (mmdet DeformableDetrTransformerEncoderLayer)."""
    from transformers.models.mask2former.modeling_mask2former import Mask2FormerPixelDecoderEncoderLayer
    _, hf_pixel_decoder, _ = _hf_decoder_state()
    hf = Mask2FormerPixelDecoderEncoderLayer(hf_pixel_decoder.config).eval()
    hf.load_state_dict(_strip(official, 'segmentor.pixel_decoder.encoder.layers.1.'), strict=True)
    ours = model.panoptic_head.pixel_decoder.encoder.layers[1].eval()
    shapes = [(2, 2), (4, 4), (8, 8)]
    n = sum(h * w for h, w in shapes)
    x, pos, ref_points = torch.randn(2, n, 64), torch.randn(2, n, 64), torch.rand(2, n, 3, 2)
    pad = torch.zeros(2, n, dtype=torch.bool)
    spatial = torch.tensor(shapes, dtype=torch.long)
    start = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    with torch.no_grad():
        ref = ours(query=x, query_pos=pos, key_padding_mask=pad, spatial_shapes=spatial, level_start_index=start,
                   reference_points=ref_points)
        out = hf(hidden_states=x, attention_mask=pad, position_embeddings=pos, reference_points=ref_points,
                 spatial_shapes_list=shapes, level_start_index=start)[0]
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_pixel_decoder_is_functional():
    """The whole pixel decoder (input projections and level embeddings in coarse-first order, the
    deformable encoder, the FPN adapter/layer on the finest map, the mask projection): HF's
    Mask2FormerPixelDecoder loaded with the converted keys gives mmxsam's XSAMPixelDecoder outputs.
    Built at the tiny sizes but with GroupNorm(32) (HF hard-codes 32 groups; the tiny config uses 8)."""
    from mmengine.config import ConfigDict
    init_default_scope('mmdet')
    torch.manual_seed(0)
    ours = MODELS.build(ConfigDict(
        type='XSAMPixelDecoder', in_channels=[32, 64, 128], strides=[4, 8, 16], feat_channels=64, out_channels=64,
        num_outs=3, norm_cfg=dict(type='GN', num_groups=32), act_cfg=dict(type='ReLU'),
        encoder=dict(num_layers=2, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=64, num_heads=4, num_levels=3, num_points=4, dropout=0.0,
                               batch_first=True),
            ffn_cfg=dict(embed_dims=64, feedforward_channels=128, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True)))),
        positional_encoding=dict(num_feats=32, normalize=True))).eval()
    with torch.no_grad():
        for p in ours.state_dict().values():
            p.copy_(torch.randn_like(p) * 0.2)
    official, report = mmxsam_to_official({f'panoptic_head.pixel_decoder.{k}': v for k, v in ours.state_dict().items()})
    assert report['unmatched'] == []
    _, hf, _ = _hf_decoder_state()
    hf.eval().load_state_dict(_strip(official, 'segmentor.pixel_decoder.'), strict=True)
    feats = [torch.randn(2, 32, 16, 16), torch.randn(2, 64, 8, 8), torch.randn(2, 128, 4, 4)]
    with torch.no_grad():
        mask_feature, multi_scale = ours(feats)
        out = hf(feats)
    torch.testing.assert_close(out.mask_features, mask_feature, atol=1e-4, rtol=1e-4)
    assert len(out.multi_scale_features) == len(multi_scale) == 3
    for a, b in zip(out.multi_scale_features, multi_scale):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
