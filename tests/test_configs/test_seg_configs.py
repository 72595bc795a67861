"""Stage-1 configs: the full-size segmentor's shapes and size; every tiny config, ablation and the projects/
example trains one iteration on the synthetic data."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmxsam  # noqa: F401
from mmdet.registry import MODELS

# SAM ViT-L's vision config (facebook/sam-vit-large); the hub is unreachable here, so the full-size
# configs are built from the same architecture given as a config instead of name_or_path.
SAM_L = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, mlp_dim=4096, image_size=1024,
             patch_size=16, window_size=14, global_attn_indexes=[5, 11, 17, 23], output_channels=256)
SAM_L_ENCODER_PARAMS = 308_278_272  # SAM paper: 308M
CONNECTOR_PARAMS = 10_499_072
PAPER_TOTAL = 364e6  # Tab. 16


def full_size_model_cfg(path='configs/xsam/seg_finetune.py', repo_root='.'):
    cfg = Config.fromfile(osp.join(repo_root, path))
    assert cfg.model.backbone.name_or_path == 'facebook/sam-vit-large'
    cfg.model.backbone = dict(type='SAMViTBackbone', config=SAM_L, out_indices=(12, 18, 24),
                              attn_implementation='eager')
    init_default_scope('mmdet')
    return cfg


def test_full_size_stage1_segmentor(repo_root):
    cfg = full_size_model_cfg(repo_root=repo_root)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
        counts = {k: sum(p.numel() for p in getattr(model, k).parameters())
                  for k in ('backbone', 'neck', 'panoptic_head')}
        # SAM encoder + connector run on the meta device at the real input size
        feats = model.extract_feat(torch.empty(1, 3, 1024, 1024))
    assert counts['backbone'] == SAM_L_ENCODER_PARAMS and counts['neck'] == CONNECTOR_PARAMS
    assert [tuple(f.shape) for f in feats] == [(1, 512, 128, 128), (1, 1024, 64, 64), (1, 2048, 32, 32)]
    total = sum(counts.values())
    print(f'stage-1 segmentor: {total / 1e6:.1f}M parameters ({counts}); paper Tab. 16: 364M')
    assert 0.9 * PAPER_TOTAL < total < PAPER_TOTAL  # 339.4M: see the README for the 24.6M gap
    head = model.panoptic_head
    assert head.num_queries == 200 and head.num_transformer_decoder_layers == 9 and head.num_classes == 133


@pytest.mark.slow
def test_full_size_decoder_shapes_on_cpu(repo_root):
    """The decoder at full size (real tensors; mmcv's deformable attention cannot run on meta)."""
    cfg = full_size_model_cfg(repo_root=repo_root)
    head = MODELS.build(cfg.model.panoptic_head).eval()
    x = [torch.randn(1, c, s, s) for c, s in ((512, 128), (1024, 64), (2048, 32))]
    with torch.no_grad():
        mask_features, multi_scale = head.pixel_decoder(x)
        cls_list, mask_list = head(x, None)
    assert tuple(mask_features.shape) == (1, 256, 128, 128)  # stride 8 of 1024
    assert [tuple(m.shape) for m in multi_scale] == [(1, 256, 32, 32), (1, 256, 64, 64), (1, 256, 128, 128)]
    assert len(cls_list) == len(mask_list) == 10  # 9 decoder layers + the prediction before the first
    assert tuple(cls_list[-1].shape) == (1, 200, 134) and tuple(mask_list[-1].shape) == (1, 200, 128, 128)


@pytest.mark.parametrize('path', ['configs/ablations/seg_mlp_connector.py',
                                  'configs/ablations/seg_single_scale_connector.py'])
def test_full_size_connector_ablations_build(repo_root, path):
    cfg = full_size_model_cfg(path, repo_root)
    if 'single_scale' in path:
        cfg.model.backbone.out_indices = (24, )
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
        feats = model.extract_feat(torch.empty(1, 3, 1024, 1024))
    expected = [(1, 1024, 64, 64)] if 'single_scale' in path else \
        [(1, 512, 128, 128), (1, 1024, 64, 64), (1, 2048, 32, 32)]
    assert [tuple(f.shape) for f in feats] == expected


def test_full_size_swin_ablation_builds(repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/ablations/seg_swin_b.py'))
    cfg.model.backbone.init_cfg = None  # no download here
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)  # on the CPU: Swin's constructor calls .item(), which meta tensors lack
    n = sum(p.numel() for p in model.backbone.parameters())
    assert 86e6 < n < 89e6  # Swin-B: 87.8M
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, 256, 256))
    assert [tuple(f.shape) for f in feats] == [(1, 512, 32, 32), (1, 512, 16, 16), (1, 512, 8, 8)]


TINY_CONFIGS = ['configs/xsam/tiny_seg_finetune.py'] + sorted(
    p for p in glob.glob('configs/ablations/tiny_*.py')) + ['projects/cosine_head/configs/tiny_seg_cosine_head.py']


@pytest.mark.slow
@pytest.mark.parametrize('path', TINY_CONFIGS)
def test_tiny_config_trains_one_iteration(repo_root, shapes_root, tmp_path, path, monkeypatch):
    monkeypatch.chdir(repo_root)  # projects/ imports resolve from the repository root
    monkeypatch.syspath_prepend(repo_root)
    cfg = Config.fromfile(osp.join(repo_root, path))
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.dataset.data_root = shapes_root
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1, val_interval=10)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert loss == loss and loss > 0  # finite, positive
    if 'cosine' in path:
        assert type(runner.model.panoptic_head).__name__ == 'CosineMask2FormerHead'
