"""Fidelity: the project's SAM ViT backbone equals transformers' ``SamVisionEncoder`` on shared weights, with
the weights going through the project's loading paths.

Next to the module, ``tests/test_models/test_backbones/test_sam_vit.py`` already checks ``SAMViTBackbone``
against ``SamVisionModel`` with ``load_state_dict`` (eager and sdpa) and through ``name_or_path``
(``from_pretrained`` of a saved ``SamVisionModel`` / ``SamModel``). Here the weights come the way the released
X-SAM weights do: an official stage-1 state dict (``segmentor.encoder.*`` = HF ``SamVisionEncoder`` names)
converted by ``official_to_mmxsam`` into the tiny stage-1 segmentor built from its config, then compared on
every block the connector and the seg projector read.
"""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from transformers import SamVisionConfig, SamVisionModel

import mmxsam  # noqa: F401  (registration)
from mmdet.registry import MODELS
from mmxsam.utils.official_checkpoint import mmxsam_to_official, official_to_mmxsam

SEGMENTOR = 'configs/_base_/models/xsam_segmentor_tiny.py'


def test_official_stage1_weights_give_hf_sam_hidden_states(repo_root):
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(repo_root, SEGMENTOR)).model
    torch.manual_seed(0)
    segmentor = MODELS.build(cfg).eval()
    sam_cfg = dict(cfg.backbone.config)

    # the HF reference with every weight random (HF zero-initialises the position embeddings)
    torch.manual_seed(1)
    hf = SamVisionModel._from_config(SamVisionConfig(**sam_cfg), attn_implementation='eager').eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0, 0.2)

    # an official stage-1 file: the segmentor's other weights plus HF's encoder under segmentor.encoder.*
    official, _ = mmxsam_to_official(segmentor.state_dict(), stage=1)
    encoder_keys = [k for k in official if k.startswith('segmentor.encoder.')]
    hf_encoder = hf.vision_encoder.state_dict()
    assert sorted(k[len('segmentor.encoder.'):] for k in encoder_keys) == sorted(hf_encoder)
    official.update({f'segmentor.encoder.{k}': v.clone() for k, v in hf_encoder.items()})

    converted, report = official_to_mmxsam(official, stage=1)
    assert report['unmatched'] == []
    torch.manual_seed(2)
    fresh = MODELS.build(cfg).eval()
    fresh.load_state_dict(converted, strict=True)

    x = torch.randn(2, 3, sam_cfg['image_size'], sam_cfg['image_size'])
    with torch.no_grad():
        ref = hf(x, output_hidden_states=True).hidden_states  # (B, h, w, C) per block, index 0 = embeddings
        outs = fresh.backbone(x)
    indices = fresh.backbone.out_indices
    assert len(outs) == len(indices) == 3
    for out, i in zip(outs, indices):
        torch.testing.assert_close(out, ref[i].permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)
    # and every other block (the seg projector reads block -2)
    fresh.backbone.out_indices = tuple(range(len(ref)))
    with torch.no_grad():
        every = fresh.backbone(x)
    for i, out in enumerate(every):
        torch.testing.assert_close(out, ref[i].permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)
