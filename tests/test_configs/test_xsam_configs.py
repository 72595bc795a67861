"""Stage-2/3 configs (X-SAM MLLM): recipe values, the full-size model on the meta device, stage-2 freezing.

Full size, measured on the meta device (``configs/xsam/mixed.py`` with the hub models given as their real
architectures, see below)::

    llm (Phi-3-mini, vocabulary resized to 32014)   3,820,772,352
    vision_encoder (SigLIP2-so400m-patch14-384)       428,225,600   (all 27 layers + head kept; 26 run)
    vision_projector (1152 -> 3072 -> 3072)            12,982,272
    seg_projector (pixel shuffle 0.5, 4096 -> 3072)    22,026,240
    llm_projector (3072 -> 256 -> 256)                    852,480
    backbone (SAM-L encoder)                          308,278,272
    neck (connector)                                   10,499,072
    panoptic_head (conditioned Mask2Former decoder)    20,611,521
    total                                           4,624,247,809   (paper: "about 5B")

of which 4,592,914,657 train in stage 3 (the rest never runs: SigLIP's last layer, post-LayerNorm and
pooling head, SAM's neck) and 35,008,512 (the two projectors) in stage 2. A 1024 image gives
729 SigLIP + 1024 SAM = 1753 visual tokens of width 3072.

The hub is unreachable here, so ``name_or_path`` is replaced by ``config=`` dicts of the same
architectures (Phi-3-mini, SigLIP2-so400m, SAM ViT-L). ``XSAM`` needs an LLM with a tokenizer (its
``<SEG>``/``<p>``/``</p>`` ids); the embedding rows are ``len(tokenizer)``, i.e. 32011 Phi-3 tokens + 3
X-SAM tokens = 32014 (reference §1.6). The stand-in is the tiny Phi-3-style tokenizer padded with added
tokens to exactly 32011 entries: only its length reaches the parameter count, and the LLM count is
checked against ``HFCausalLM(config=..., vocab_size=32014)`` built without any tokenizer.
"""
import copy
import inspect
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401
from mmdet.registry import DATA_SAMPLERS, DATASETS, MODELS, TRANSFORMS
from mmdet.structures import DetDataSample

STAGE2 = 'configs/xsam/align_pretrain.py'
STAGE3 = 'configs/xsam/mixed.py'
ABLATIONS = ['configs/ablations/mixed_clip_l336.py', 'configs/ablations/mixed_siglip_so400m.py',
             'configs/ablations/mixed_qwen3_4b.py', 'configs/ablations/mixed_vicuna_7b.py']
NEW_CONFIGS = ['configs/_base_/datasets/llava_pretrain.py', 'configs/_base_/datasets/xsam_mixed.py',
               'configs/_base_/schedules/xsam_align_pretrain_1e.py', 'configs/_base_/schedules/xsam_mixed_1e.py',
               STAGE2, STAGE3] + ABLATIONS

# the real architectures (microsoft/Phi-3-mini-4k-instruct, google/siglip2-so400m-patch14-384,
# facebook/sam-vit-large, openai/clip-vit-large-patch14-336), given as configs since the hub is unreachable
PHI3_MINI = dict(model_type='phi3', hidden_size=3072, num_hidden_layers=32, num_attention_heads=32,
                 intermediate_size=8192, vocab_size=32064, max_position_embeddings=4096)
PHI3_TOKENIZER_LEN = 32011  # 32000 SentencePiece pieces + 11 chat special tokens
SO400M = dict(model_type='siglip_vision_model', hidden_size=1152, num_hidden_layers=27, num_attention_heads=16,
              intermediate_size=4304, image_size=384, patch_size=14)
SAM_L = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, mlp_dim=4096, image_size=1024,
             patch_size=16, window_size=14, global_attn_indexes=[5, 11, 17, 23], output_channels=256)
CLIP_L336 = dict(model_type='clip_vision_model', hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                 intermediate_size=4096, image_size=336, patch_size=14)

PARAMS = dict(llm=3_820_772_352, vision_encoder=428_225_600, vision_projector=12_982_272,
              seg_projector=22_026_240, llm_projector=852_480, backbone=308_278_272, neck=10_499_072,
              panoptic_head=20_611_521)
TOTAL = 4_624_247_809
STAGE3_TRAINABLE = 4_592_914_657

SOURCES = [  # (source name, data set type), the reference's order (§3 "S3 dataset mix")
    ('llava_665k', 'XSAMImageConvDataset'), ('coco_panoptic', 'XSAMGenericSegDataset'),
    ('refcoco', 'XSAMReferSegDataset'), ('refcoco+', 'XSAMReferSegDataset'), ('refcocog', 'XSAMReferSegDataset'),
    ('lisa_reasonseg', 'XSAMReasonSegDataset'), ('grandf_gcg', 'XSAMGCGSegDataset'),
    ('refcocog_gcg', 'XSAMGCGSegDataset'), ('psg_gcg', 'XSAMGCGSegDataset'), ('flickr_gcg', 'XSAMGCGSegDataset'),
    ('coco_vgd', 'XSAMVGDSegDataset')]
PACK = dict(type='PackXSAMInputs', tokenizer=dict(name_or_path='microsoft/Phi-3-mini-4k-instruct'),
            chat_template='phi3', max_length=2319)


def load(path, repo_root):
    return Config.fromfile(osp.join(repo_root, path))


# ---------------------------------------------------------------------------------------------- (a) recipes
@pytest.mark.parametrize('path', NEW_CONFIGS)
def test_configs_load(repo_root, path):
    cfg = load(path, repo_root)
    assert len(cfg.keys()) > 0


def _check_deepspeed(cfg, accumulation):
    assert cfg.runner_type == 'FlexibleRunner'
    s = cfg.strategy
    assert s.type == 'DeepSpeedStrategy' and s.bf16 == dict(enabled=True)
    assert s.gradient_clipping == 1.0 and s.gradient_accumulation_steps == accumulation
    assert s.zero_optimization == dict(stage=2, allgather_partitions=True, allgather_bucket_size=1e9,
                                       reduce_scatter=True, reduce_bucket_size=1e9, overlap_comm=True,
                                       contiguous_gradients=True)
    assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'
    assert 'clip_grad' not in cfg.optim_wrapper and 'accumulative_counts' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.optim_wrapper.optimizer.betas == (0.9, 0.999)
    linear, cosine = cfg.param_scheduler
    assert linear == dict(type='LinearLR', start_factor=1e-5, by_epoch=True, begin=0, end=0.03,
                          convert_to_iter_based=True)
    assert cosine == dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0.03, end=1,
                          convert_to_iter_based=True)
    assert cfg.train_cfg == dict(type='EpochBasedTrainLoop', max_epochs=1)
    if accumulation > 1:  # stage 2: no evaluation (the reference has none)
        for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
            assert cfg[key] is None, key
    else:  # stage 3: referring cIoU / gIoU on RefCOCO val, targets at the original size
        assert cfg.val_evaluator.type == 'ReferSegMetric' and cfg.val_dataloader.dataset.split == 'val'
        steps = [t['type'] for t in cfg.val_dataloader.dataset.pipeline]
        assert steps == ['LoadImageFromFile', 'XSAMResize', 'LoadXSAMAnnotations', 'BinarySegTarget',
                         'PackXSAMInputs']


def test_stage2_recipe(repo_root):
    cfg = load(STAGE2, repo_root)
    _check_deepspeed(cfg, accumulation=4)
    opt = cfg.optim_wrapper.optimizer
    assert opt.lr == 1e-3 and opt.weight_decay == 0
    assert 'paramwise_cfg' not in cfg.optim_wrapper
    assert cfg.strategy.exclude_frozen_parameters is True
    # 4 images/GPU x 16 GPUs x accumulation 4 = the paper's 256; mmengine's auto_scale_lr counts no accumulation
    assert cfg.train_dataloader.batch_size * 16 * cfg.strategy.gradient_accumulation_steps == 256
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=64)
    loader = cfg.train_dataloader
    assert loader.sampler == dict(type='DefaultSampler', shuffle=True)
    ds = loader.dataset
    assert ds.type == 'XSAMImageConvDataset'
    assert osp.join(ds.data_root, ds.ann_file) == 'data/imgconv_data/llava/LLaVA-Pretrain/blip_laion_cc_sbu_558k.json'
    assert osp.join(ds.data_root, ds.data_prefix.img_path) == 'data/imgconv_data/llava/LLaVA-Pretrain/images/'
    assert ds.pipeline == [dict(type='LoadImageFromFile'),
                           dict(type='XSAMResize', scale=(1024, 1024), keep_ratio=True), PACK]
    # model deltas: no decoder, only the projectors train, SAM from stage 1
    m = cfg.model
    assert m.type == 'XSAM'
    assert m.neck is None and m.panoptic_head is None and m.panoptic_fusion_head is None and m.llm_projector is None
    assert m.backbone.out_indices == (23, ) and m.seg_projector_in_index == 0 and m.neck_in_indices == ()
    # (item access: ConfigDict has a `freeze` method)
    assert m.llm['freeze'] is True and m.vision_encoder.frozen is True and m.backbone.frozen is True
    assert m.frozen_modules == ('llm', 'vision_encoder', 'backbone')
    assert m.data_preprocessor.pad_to_square is True
    assert m.init_cfg == [dict(type='Pretrained', checkpoint='work_dirs/seg_finetune/epoch_36.pth')]
    # a plain state-dict file (epoch_1.pth) that stage 3 can load with `Pretrained`
    assert cfg.default_hooks.checkpoint.save_optimizer is False and cfg.default_hooks.checkpoint.by_epoch


def test_stage3_recipe(repo_root):
    cfg = load(STAGE3, repo_root)
    _check_deepspeed(cfg, accumulation=1)
    opt = cfg.optim_wrapper.optimizer
    assert opt.lr == 4e-5 and opt.weight_decay == 0.05
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        custom_keys={'vision_encoder': dict(lr_mult=0.1), 'backbone': dict(lr_mult=0.1)})
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=64)
    assert cfg.model.init_cfg == [dict(type='Pretrained', checkpoint='work_dirs/seg_finetune/epoch_36.pth'),
                                  dict(type='Pretrained', checkpoint='work_dirs/align_pretrain/epoch_1.pth')]
    assert cfg.model.data_preprocessor.pad_to_square is False and cfg.model.data_preprocessor.test_pad_to_square
    assert cfg.custom_hooks == [dict(type='SamplerStateHook'), dict(type='GlobalBatchCheckHook')]
    assert cfg.train_dataloader.sampler.global_batch_size == 64  # 16 GPUs x 4, one source per step
    assert cfg.find_unused_parameters is True
    assert cfg.default_hooks.checkpoint == dict(type='CheckpointHook', by_epoch=False, interval=2000,
                                                max_keep_ckpts=2)

    loader = cfg.train_dataloader
    assert loader.batch_size == 4 and loader.batch_sampler is None
    assert loader.sampler == dict(type='SourceGroupedSampler', batch_size=4, mega_batch_mult=1, global_batch_size=64)
    mix = loader.dataset
    assert mix.type == 'BalancedConcatDataset' and mix.oversample_thr == 0.1
    assert [(d.source_name, d.type) for d in mix.datasets] == SOURCES
    assert mix.source_names == [name for name, _ in SOURCES]
    for d in mix.datasets:
        steps = [t.type for t in d.pipeline]
        assert d.pipeline[-1] == PACK  # one shared packing step
        if d.type == 'XSAMImageConvDataset':
            assert steps == ['IfHasImage', 'PackXSAMInputs']
            assert [t.type for t in d.pipeline[0].transforms] == ['LoadImageFromFile', 'XSAMResize']
        elif d.type == 'XSAMGenericSegDataset':
            assert steps == ['LoadImageFromFile', 'LoadPanopticSegments', 'XSAMResize', 'PackXSAMInputs']
        else:
            assert steps == ['LoadImageFromFile', 'LoadXSAMAnnotations', 'XSAMResize', 'PackXSAMInputs']
        assert d.data_root.startswith('data/') and not d.get('test_mode', False)
    refer = [d for d in mix.datasets if d.type == 'XSAMReferSegDataset']
    assert [(d.refer_file, d.split, d.expand_combinations) for d in refer] == [
        ('refcoco/refs(unc).p', 'train', True), ('refcoco+/refs(unc).p', 'train', True),
        ('refcocog/refs(umd).p', 'train', True)]
    assert [d.ann_format for d in mix.datasets if d.type == 'XSAMGCGSegDataset'] == [
        'grandf', 'refcocog', 'psg', 'flickr']


@pytest.mark.parametrize('path', [STAGE3, 'configs/xsam/align_pretrain.py'])
def test_data_configs_match_the_classes(repo_root, path):
    """Every key of the data set, transform and sampler configs is an argument of the registered class."""
    init_default_scope('mmdet')
    cfg = load(path, repo_root)

    def accepted(cls):
        names = set()
        for klass in cls.__mro__:
            if '__init__' in klass.__dict__:
                names |= {n for n, p in inspect.signature(klass.__dict__['__init__']).parameters.items()
                          if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        return names

    def check_transforms(pipeline):
        for t in pipeline:
            cls = TRANSFORMS.get(t.type)
            assert cls is not None, t.type
            assert set(t) - {'type'} <= accepted(cls), (t.type, set(t) - accepted(cls))
            if t.type == 'IfHasImage':
                check_transforms(t.transforms)

    loader = cfg.train_dataloader
    sources = loader.dataset.datasets if loader.dataset.type == 'BalancedConcatDataset' else [loader.dataset]
    if loader.dataset.type == 'BalancedConcatDataset':
        wrapper = dict(loader.dataset)
        wrapper.pop('type')
        assert set(wrapper) <= accepted(DATASETS.get('BalancedConcatDataset'))
    for d in sources:
        cls = DATASETS.get(d.type)
        assert cls is not None, d.type
        assert set(d) - {'type'} <= accepted(cls), (d.type, set(d) - accepted(cls))
        check_transforms(d.pipeline)
    sampler = DATA_SAMPLERS.get(loader.sampler.type)
    assert set(loader.sampler) - {'type'} <= accepted(sampler)


def test_schedule_shape(repo_root):
    """Warm-up over the first 3 % of the iterations from 1e-5 x lr, then cosine to 0 (1000 iterations)."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = load(STAGE3, repo_root)
    base_lr = cfg.optim_wrapper.optimizer.lr
    wrapper = OptimWrapper(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=base_lr))
    schedulers = [PARAM_SCHEDULERS.build(copy.deepcopy(s), default_args=dict(optimizer=wrapper, epoch_length=1000))
                  for s in cfg.param_scheduler]
    assert [(s.begin, s.end, s.by_epoch) for s in schedulers] == [(0, 30, False), (30, 1000, False)]
    lrs = []
    for _ in range(1000):
        lrs.append(wrapper.optimizer.param_groups[0]['lr'])
        for s in schedulers:
            s.step()
    assert lrs[0] == pytest.approx(base_lr * 1e-5)
    assert all(a < b for a, b in zip(lrs[:30], lrs[1:30]))  # warm-up rises ...
    assert lrs[29] > 0.95 * base_lr and max(lrs) <= base_lr
    assert all(a >= b for a, b in zip(lrs[30:], lrs[31:]))  # ... then the cosine decays
    assert lrs[-1] < 1e-4 * base_lr


@pytest.mark.parametrize('path', [STAGE3, STAGE2])
def test_flexible_runner_builds(repo_root, tmp_path, path, monkeypatch):
    """FlexibleRunner with the DeepSpeed strategy and the hooks builds from the config (no model yet)."""
    from mmengine._strategy import deepspeed as ds_strategy
    from mmengine.registry import RUNNERS
    # mmengine 0.10.7 registers DeepSpeed's own optimizers (FusedAdam, ...) in the global OPTIMIZERS registry
    # in every DeepSpeedStrategy() and refuses a second registration: fine for training (one strategy per
    # process), not for a test session. The configs use torch's AdamW, so the registration is skipped here.
    monkeypatch.setattr(ds_strategy, 'register_deepspeed_optimizers', lambda: [])
    cfg = load(path, repo_root)
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    runner = RUNNERS.build(cfg)
    assert type(runner).__name__ == 'FlexibleRunner' and type(runner.strategy).__name__ == 'DeepSpeedStrategy'
    config = runner.strategy.config
    assert config['train_micro_batch_size_per_gpu'] == 4
    assert config['gradient_accumulation_steps'] == (4 if path == STAGE2 else 1)
    assert config['gradient_clipping'] == 1.0 and config['bf16'] == dict(enabled=True)
    hooks = [type(h).__name__ for h in runner.hooks]
    assert ('SamplerStateHook' in hooks) == (path == STAGE3) and 'DistSamplerSeedHook' in hooks


def test_ablations(repo_root):
    base = load(STAGE3, repo_root)
    clip = load('configs/ablations/mixed_clip_l336.py', repo_root).model
    assert clip.vision_encoder.name_or_path == 'openai/clip-vit-large-patch14-336'
    assert clip.vision_encoder.select_feature == 'patch' and clip.vision_projector.in_channels == 1024
    pre = clip.data_preprocessor
    assert pre.encoder_size == 336 and pre.encoder_interpolation == 'bicubic'
    assert pre.encoder_mean == pytest.approx([255 * m for m in (0.48145466, 0.4578275, 0.40821073)])
    assert pre.encoder_std == pytest.approx([255 * s for s in (0.26862954, 0.26130258, 0.27577711)])

    siglip = load('configs/ablations/mixed_siglip_so400m.py', repo_root).model
    assert siglip.vision_encoder.name_or_path == 'google/siglip-so400m-patch14-384'
    assert siglip.vision_projector.in_channels == 1152 and siglip.data_preprocessor.encoder_size == 384

    for path, name, template, dims, max_length in [
            ('configs/ablations/mixed_qwen3_4b.py', 'Qwen/Qwen3-4B-Instruct-2507', 'qwen', 2560, 39183),
            ('configs/ablations/mixed_vicuna_7b.py', 'lmsys/vicuna-7b-v1.5', 'vicuna', 4096, 2319)]:
        cfg = load(path, repo_root)
        m = cfg.model
        assert m.llm.name_or_path == m.llm.tokenizer.name_or_path == name and m.llm.chat_template == template
        assert m.vision_projector.out_channels == m.seg_projector.out_channels == m.llm_projector.in_channels == dims
        mix = cfg.train_dataloader.dataset
        assert [d.source_name for d in mix.datasets] == [n for n, _ in SOURCES]
        for d, ref in zip(mix.datasets, base.train_dataloader.dataset.datasets):
            assert d.pipeline[-1] == dict(PACK, tokenizer=dict(name_or_path=name), chat_template=template,
                                          max_length=max_length)
            assert d.pipeline[:-1] == ref.pipeline[:-1]

    for path in ABLATIONS:  # each ablation needs a stage-2 run of its own model
        init = load(path, repo_root).model.init_cfg
        assert init[0] == base.model.init_cfg[0]
        assert init[1].checkpoint.startswith('work_dirs/align_pretrain_') and init[1] != base.model.init_cfg[1]


def test_clip_ablation_tokens_on_meta(repo_root):
    """CLIP ViT-L/14-336 (real architecture): 576 patch tokens of width 1024, projected to 3072."""
    cfg = load('configs/ablations/mixed_clip_l336.py', repo_root)
    init_default_scope('mmdet')
    enc_cfg = cfg.model.vision_encoder
    enc_cfg.pop('name_or_path')
    enc_cfg.config = CLIP_L336
    with torch.device('meta'), torch.no_grad():
        encoder = MODELS.build(enc_cfg)
        projector = MODELS.build(cfg.model.vision_projector)
        tokens = projector(encoder(torch.empty(1, 3, 336, 336)))
    assert encoder.family == 'clip' and tuple(tokens.shape) == (1, 576, 3072)


# ------------------------------------------------------------------------------------ (b), (c) full size
@pytest.fixture(scope='module')
def tokenizer_folder(tmp_path_factory):
    """The tiny Phi-3-style tokenizer (Phi-3's chat special tokens), trained on the built-in corpus only."""
    from mmxsam.models.language import EXTRA_CORPUS, build_tiny_tokenizer
    folder = str(tmp_path_factory.mktemp('tokenizer'))
    build_tiny_tokenizer(list(EXTRA_CORPUS), folder, vocab_size=512)
    return folder


@pytest.fixture(scope='module')
def phi3_sized_tokenizer(tokenizer_folder):
    """Factory of tokenizers with Phi-3-mini's length (32011): the tiny Phi-3-style tokenizer padded with
    added tokens. Only its length matters for the model's size."""
    from transformers import AutoTokenizer

    def make():
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
        tokenizer.add_tokens([f'<|pad_{i}|>' for i in range(PHI3_TOKENIZER_LEN - len(tokenizer))])
        assert len(tokenizer) == PHI3_TOKENIZER_LEN
        return tokenizer

    return make


def build_full_size_on_meta(path, repo_root, tokenizer):
    """The config's model with its hub weights replaced by the same architectures, on the meta device."""
    cfg = load(path, repo_root)
    m = cfg.model
    assert m.llm.pop('name_or_path') == 'microsoft/Phi-3-mini-4k-instruct'
    assert m.vision_encoder.pop('name_or_path') == 'google/siglip2-so400m-patch14-384'
    assert m.backbone.pop('name_or_path') == 'facebook/sam-vit-large'
    m.llm.config = PHI3_MINI
    m.llm.tokenizer = tokenizer
    m.vision_encoder.config = SO400M
    m.backbone.config = SAM_L
    m.init_cfg = None  # nothing to load here
    init_default_scope('mmdet')
    with torch.device('meta'):
        model = MODELS.build(m)
    return cfg, model


def _param_counts(model):
    return {name: sum(p.numel() for p in getattr(model, name).parameters()) for name in PARAMS
            if getattr(model, name) is not None}


def test_full_size_stage3_on_meta(repo_root, phi3_sized_tokenizer):
    cfg, model = build_full_size_on_meta(STAGE3, repo_root, phi3_sized_tokenizer())
    counts = _param_counts(model)
    total = sum(p.numel() for p in model.parameters())
    print(f'X-SAM full size: {total:,} parameters: ' + ', '.join(f'{k} {v:,}' for k, v in counts.items()))
    assert counts == PARAMS and total == TOTAL == sum(PARAMS.values())  # no parameter outside these modules
    assert 4.5e9 < total < 5.5e9  # the paper: "about 5B"
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == STAGE3_TRAINABLE

    # the LLM is Phi-3-mini with the 32011 + 3 rows, the same as without any tokenizer
    from mmxsam.models.language.hf_causal_lm import HFCausalLM
    assert model.llm.get_input_embeddings().weight.shape == (32014, 3072)
    with torch.device('meta'):
        bare = HFCausalLM(config=PHI3_MINI, vocab_size=PHI3_TOKENIZER_LEN + 3)
    assert sum(p.numel() for p in bare.parameters()) == PARAMS['llm']

    # visual tokens of one 1024 image: 729 SigLIP (27 x 27 at 384) + 1024 SAM (64 x 64 -> 32 x 32)
    sample = DetDataSample(metainfo=dict(has_image=True))
    with torch.device('meta'), torch.no_grad():
        visual = model._encode_images(torch.empty(1, 3, 1024, 1024), torch.empty(1, 3, 384, 384), [sample])
        siglip = model.vision_projector(model.vision_encoder(torch.empty(1, 3, 384, 384)))
        connector = model.neck([visual['sam'][i] for i in model.neck_in_indices])
    assert tuple(siglip.shape) == (1, 729, 3072)
    assert tuple(visual['seg_tokens'].shape) == (1, 1024, 3072) and visual['seg_grid'] == (32, 32)
    assert tuple(visual['image_tokens'][0].shape) == (1753, 3072)
    assert [tuple(f.shape) for f in connector] == [(1, 512, 128, 128), (1, 1024, 64, 64), (1, 2048, 32, 32)]

    # optimizer groups: SigLIP2 and SAM at lr x 0.1, weight decay 0.05 everywhere
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    assert type(wrapper).__name__ == 'DeepSpeedOptimWrapper'
    lr_of = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    assert all(g['weight_decay'] == 0.05 for g in wrapper.optimizer.param_groups)
    for name, p in model.named_parameters():
        if not p.requires_grad:  # never run (SigLIP's last layer and head, SAM's neck): not optimised
            assert id(p) not in lr_of, name
            continue
        slow = name.startswith(('backbone.', 'vision_encoder.'))
        assert lr_of[id(p)] == pytest.approx(4e-6 if slow else 4e-5), name
    assert sum(p.numel() for g in wrapper.optimizer.param_groups for p in g['params']) == STAGE3_TRAINABLE


def test_full_size_stage2_freezing_on_meta(repo_root, phi3_sized_tokenizer):
    """Stage 2: only the two projectors train; no decoder; still 1753 visual tokens."""
    _, model = build_full_size_on_meta(STAGE2, repo_root, phi3_sized_tokenizer())
    assert model.neck is None and model.panoptic_head is None and model.llm_projector is None
    assert model.llm.freeze is True and model.vision_encoder.frozen is True and model.backbone.frozen is True
    for mode in (False, True):  # as built, and after train() (freezing survives it)
        model.train(mode)
        trainable = {name.split('.')[0] for name, p in model.named_parameters() if p.requires_grad}
        assert trainable == {'vision_projector', 'seg_projector'}
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert n == PARAMS['vision_projector'] + PARAMS['seg_projector'] == 35_008_512
    assert not model.llm.training and not model.vision_encoder.training and not model.backbone.training
    assert model.vision_projector.training and model.seg_projector.training
    assert sum(p.numel() for p in model.parameters()) == TOTAL - sum(
        PARAMS[k] for k in ('llm_projector', 'neck', 'panoptic_head'))
    with torch.device('meta'), torch.no_grad():
        visual = model._encode_images(torch.empty(1, 3, 1024, 1024), torch.empty(1, 3, 384, 384),
                                      [DetDataSample(metainfo=dict(has_image=True))])
    assert len(visual['sam']) == 1 and tuple(visual['image_tokens'][0].shape) == (1753, 3072)


def test_checkpoint_chain_at_tiny_size(repo_root, tmp_path, tokenizer_folder):
    """Stage 1 -> 2 -> 3 initialisation as the configs chain it (``Pretrained`` by parameter name), on the tiny
    models: a stage-1 segmentor checkpoint, a stage-2 model with align_pretrain.py's deltas that writes only
    its trainable weights (DeepSpeed's ``exclude_frozen_parameters``), and a stage-3 model loading both."""
    from mmengine.runner import save_checkpoint
    init_default_scope('mmdet')
    torch.manual_seed(0)
    seg = MODELS.build(load('configs/_base_/models/xsam_segmentor_tiny.py', repo_root).model)
    s1 = str(tmp_path / 'epoch_36.pth')
    save_checkpoint(dict(state_dict=seg.state_dict(), meta=dict()), s1)

    tiny = load('configs/_base_/models/xsam_tiny.py', repo_root).model
    tiny.llm.tokenizer = dict(name_or_path=tokenizer_folder)
    # stage 2: the deltas of configs/xsam/align_pretrain.py; SAM block -2 of the tiny 6-block encoder is 5
    stage2 = load(STAGE2, repo_root).model
    s2_cfg = copy.deepcopy(tiny)
    for key in ('neck', 'panoptic_head', 'panoptic_fusion_head', 'llm_projector', 'region_sampler',
                'seg_projector_in_index', 'neck_in_indices', 'frozen_modules'):
        s2_cfg[key] = copy.deepcopy(stage2[key])
    s2_cfg.llm['freeze'] = stage2.llm['freeze']  # item access: ConfigDict has a `freeze` method
    s2_cfg.vision_encoder.frozen = stage2.vision_encoder.frozen
    s2_cfg.backbone.update(frozen=stage2.backbone.frozen, out_indices=(5, ))
    s2_cfg.init_cfg = [dict(stage2.init_cfg[0], checkpoint=s1)]
    s2 = MODELS.build(s2_cfg)
    s2.init_weights()
    for k, v in seg.backbone.state_dict().items():
        assert torch.equal(s2.backbone.state_dict()[k], v), k
    trained = {k: v.detach().clone() + 1 for k, v in s2.state_dict(keep_vars=True).items() if v.requires_grad}
    assert {k.split('.')[0] for k in trained} == {'vision_projector', 'seg_projector'}
    s2_path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint(dict(state_dict=trained, meta=dict()), s2_path)

    # stage 3: the init_cfg list of configs/xsam/mixed.py with these two files
    init = load(STAGE3, repo_root).model.init_cfg
    s3_cfg = copy.deepcopy(tiny)
    s3_cfg.init_cfg = [dict(init[0], checkpoint=s1), dict(init[1], checkpoint=s2_path)]
    s3 = MODELS.build(s3_cfg)
    s3.init_weights()
    state = s3.state_dict()
    loaded = 0
    for k, v in seg.state_dict().items():  # everything of stage 1 whose shape fits (not the linear class head)
        if k in state and state[k].shape == v.shape:
            assert torch.equal(state[k], v), k
            loaded += 1
    assert loaded == sum(1 for k in seg.state_dict() if k.startswith(('backbone.', 'neck.'))) + sum(
        1 for k, v in seg.state_dict().items()
        if k.startswith('panoptic_head.') and k in state and state[k].shape == v.shape)
    for k, v in trained.items():  # then the stage-2 projectors
        assert torch.equal(state[k], v), k


def test_tiny_stage2_freezing(repo_root, tokenizer_folder):
    """configs/xsam/tiny_align_pretrain.py (the CPU counterpart of align_pretrain.py): only the two projectors
    train, also after ``train()``."""
    path = 'configs/xsam/tiny_align_pretrain.py'
    if not osp.isfile(osp.join(repo_root, path)):
        pytest.skip(f'{path} does not exist')
    m = load(path, repo_root).model
    m.llm.tokenizer = dict(name_or_path=tokenizer_folder)  # data/shapes/tokenizer need not exist here
    m.init_cfg = None  # no stage-1 run here
    init_default_scope('mmdet')
    model = MODELS.build(m)
    for mode in (False, True):
        model.train(mode)
        assert {n.split('.')[0] for n, p in model.named_parameters() if p.requires_grad} == {
            'vision_projector', 'seg_projector'}
    assert model.neck is None and model.panoptic_head is None and model.llm_projector is None
