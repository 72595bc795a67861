"""The tiny stage-2/3 configs: what trains in each stage, learning-rate multipliers, the stage hand-off
through tools/train.py and the tiny pipeline with its demo (slow)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401

PROJECTORS = ('vision_projector.', 'seg_projector.')


def build(repo_root, name, tokenizer_dir):
    cfg = Config.fromfile(f'{repo_root}/configs/xsam/{name}.py')
    cfg.model.llm.tokenizer.name_or_path = tokenizer_dir
    cfg.model.init_cfg = None  # the stage checkpoints are tested end to end below
    init_default_scope('mmdet')
    return cfg, MODELS.build(cfg.model)


def test_stage2_trains_only_the_projectors(repo_root, tiny_tokenizer_dir):
    cfg, model = build(repo_root, 'tiny_align_pretrain', tiny_tokenizer_dir)
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(PROJECTORS) for n in trainable)
    assert {n.split('.')[0] for n in trainable} == {'vision_projector', 'seg_projector'}
    assert model.panoptic_head is None and model.neck is None and model.llm_projector is None
    assert not model.llm.model.training and not model.vision_encoder.vision_model.training \
        and not model.backbone.encoder.training  # frozen parts stay in eval mode (no dropout)
    assert cfg.optim_wrapper.optimizer.lr == 1e-3 and cfg.optim_wrapper.optimizer.weight_decay == 0.0
    assert cfg.model.data_preprocessor.pad_to_square is True


def test_stage3_trains_everything_encoders_at_a_tenth(repo_root, tiny_tokenizer_dir):
    cfg, model = build(repo_root, 'tiny_mixed', tiny_tokenizer_dir)
    model.train()
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    # only parts that never run stay frozen: the SAM neck, and SigLIP after its penultimate layer
    # (the tiny SigLIP has 2 layers: layer 1, the post-LayerNorm and the pooling head)
    never_run = ('backbone.encoder.neck.', 'vision_encoder.vision_model.encoder.layers.1.',
                 'vision_encoder.vision_model.post_layernorm.', 'vision_encoder.vision_model.head.')
    assert frozen and all(n.startswith(never_run) for n in frozen), frozen
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base = cfg.optim_wrapper.optimizer.lr
    lrs = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lrs[names[id(p)]] = group['lr']
    for name, lr in lrs.items():
        expected = base * 0.1 if name.startswith(('backbone.', 'vision_encoder.')) else base
        assert lr == pytest.approx(expected), name
    assert any(n.startswith('llm.') for n in lrs) and any(n.startswith('panoptic_head.') for n in lrs)


@pytest.mark.slow
def test_tiny_pipeline_stage_handoff_and_demo(repo_root, shapes_workdir):
    """Stages 1 -> 2 -> 3 through tools/train.py (a few iterations each), each loading the previous one's
    checkpoint, then the demo answers a chat question and a referring prompt and writes pictures."""
    cwd = shapes_workdir
    cmd = [sys.executable, f'{repo_root}/tools/misc/tiny_pipeline.py', '--stage1-iters', '2', '--stage2-iters', '3',
           '--stage3-iters', '4', '--work-dir', 'work', '--out-dir', 'demo_out']
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, PYTHONUNBUFFERED='1'))
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    for stage, iters in (('tiny_seg_finetune', 2), ('tiny_align_pretrain', 3), ('tiny_mixed', 4)):
        assert osp.isfile(cwd / 'work' / stage / f'iter_{iters}.pth'), stage
    # stage 2 loaded stage 1's SAM encoder, stage 3 both checkpoints
    assert 'load model from: last://work/tiny_seg_finetune' in log
    assert 'load model from: last://work/tiny_align_pretrain' in log
    s1 = torch.load(cwd / 'work/tiny_seg_finetune/iter_2.pth', map_location='cpu')['state_dict']
    s2 = torch.load(cwd / 'work/tiny_align_pretrain/iter_3.pth', map_location='cpu')['state_dict']
    s3 = torch.load(cwd / 'work/tiny_mixed/iter_4.pth', map_location='cpu')['state_dict']
    key = 'backbone.encoder.layers.0.attn.qkv.weight'
    assert torch.equal(s1[key], s2[key])  # stage 2 keeps stage 1's (frozen) SAM
    assert not torch.equal(s1['neck.branches.0.0.weight'], s3['neck.branches.0.0.weight'])  # stage 3 trains on
    assert 'panoptic_head.cls_embed.weight' not in s3 and 'panoptic_head.bg_embed.weight' in s3
    assert 'question: How many shapes are there in the image?' in log and 'answer:' in log
    assert osp.getsize(cwd / 'demo_out' / 'chat.png') > 0 and osp.getsize(cwd / 'demo_out' / 'refseg.png') > 0
