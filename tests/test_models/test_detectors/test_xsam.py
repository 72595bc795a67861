"""XSAM, the unified model, at tiny size (configs/_base_/models/xsam_tiny.py) on the synthetic data:
loss per task, loss masking, conditions and <SEG> against hand computation, contrastive referring
classes, teacher-forced and generated prediction (batch > 1 equals batch 1), bad input."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401  (registration)
from mmxsam.models.language.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX

MODEL_CFG = 'configs/_base_/models/xsam_tiny.py'
SEG_TASKS = ('genseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg')


def model_cfg(repo_root, tokenizer_dir, **test_cfg):
    cfg = Config.fromfile(f'{repo_root}/{MODEL_CFG}').model
    cfg.llm.tokenizer.name_or_path = tokenizer_dir
    cfg.test_cfg.update(test_cfg)
    return cfg


@pytest.fixture(scope='module')
def model(repo_root, tiny_tokenizer_dir):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    m = MODELS.build(model_cfg(repo_root, tiny_tokenizer_dir))
    m.init_weights()
    return m


def task_dataset(task, root, tokenizer_dir, test_mode=False):
    image = [dict(type='LoadImageFromFile'),
             dict(type='LoadPanopticSegments') if task == 'genseg' else dict(type='LoadXSAMAnnotations'),
             dict(type='XSAMResize', scale=(128, 128), keep_ratio=True)]
    pack = dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tokenizer_dir), max_length=512)
    split = 'val' if test_mode else 'train'
    cfgs = dict(
        genseg=dict(type='XSAMGenericSegDataset', ann_file=f'annotations/panoptic_{split}.json',
                    data_prefix=dict(img='images/', seg=f'annotations/panoptic_{split}/')),
        refseg=dict(type='XSAMReferSegDataset', refer_file='refshapes/refs(unc).p',
                    ann_file='refshapes/instances.json', split=split, data_prefix=dict(img='images/')),
        reaseg=dict(type='XSAMReasonSegDataset', data_prefix=dict(img=f'reason_seg/{split}')),
        gcgseg=dict(type='XSAMGCGSegDataset', ann_file=f'gcg/grandf_gcg_{split}.json',
                    data_prefix=dict(img_path='images/')),
        vgdseg=dict(type='XSAMVGDSegDataset', ann_file=f'vgd/vgd_{split}.json', data_prefix=dict(img='images/'),
                    **(dict(prompt_type='box') if test_mode else {})),
        intseg=dict(type='XSAMInteractiveSegDataset', ann_file=f'vgd/vgd_{split}.json', data_prefix=dict(img='images/'),
                    **(dict(prompt_type='box') if test_mode else {})),
        imgconv=dict(type='XSAMImageConvDataset', ann_file=f'llava/conversations_{split}.json',
                     data_prefix=dict(img_path='images/')))
    pipeline = [dict(type='IfHasImage', transforms=[image[0], image[2]]), pack] if task == 'imgconv' \
        else image + [pack]
    return DATASETS.build(dict(cfgs[task], data_root=root, pipeline=pipeline, test_mode=test_mode,
                               prompt_mode='fixed'))


def batch_of(model, task, root, tokenizer_dir, indices=(0, 1), training=True, test_mode=False):
    dataset = task_dataset(task, root, tokenizer_dir, test_mode)
    data = pseudo_collate([dataset[i] for i in indices])
    return model.data_preprocessor(data, training=training)


@pytest.mark.parametrize('task', SEG_TASKS + ('imgconv', ))
def test_loss_per_task(model, task, shapes_root, tiny_tokenizer_dir):
    model.train()
    data = batch_of(model, task, shapes_root, tiny_tokenizer_dir)
    losses = model(**data, mode='loss')
    if task == 'imgconv':  # image conversation: the LM loss only
        assert set(losses) == {'loss_llm'}
    else:
        assert {'loss_llm', 'loss_cls', 'loss_mask', 'loss_dice', 'd0.loss_cls'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    model.zero_grad()
    total.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(n.startswith('llm.') for n in grads) and any(n.startswith('vision_projector.') for n in grads)
    if task != 'imgconv':
        assert any(n.startswith('llm_projector.') for n in grads)
        assert any(n.startswith('panoptic_head.') for n in grads)
        assert any(n.startswith('neck.') for n in grads)
    if task == 'vgdseg':  # region features come from the seg projector tokens
        assert any(n.startswith('seg_projector.') for n in grads)


def _merged(model, samples, visual):
    regions = model._region_tokens(visual, samples)
    return model._llm_inputs([s.input_ids for s in samples], visual, regions, samples,
                             labels=[s.lm_labels for s in samples])


def test_loss_masking_and_lm_loss(model, shapes_root, tiny_tokenizer_dir):
    """Only the answers (and their <|end|>) are supervised; loss_llm is the CE over exactly those tokens."""
    model.eval()
    data = batch_of(model, 'refseg', shapes_root, tiny_tokenizer_dir)
    samples = data['data_samples']
    with torch.no_grad():
        visual = model._encode_images(data['inputs'], data['encoder_inputs'], samples)
        merged = _merged(model, samples, visual)
        tok = model.llm.tokenizer
        for b, sample in enumerate(samples):
            labels = merged['labels'][b]
            ids = merged['expanded_ids'][b]
            sup = labels != IGNORE_INDEX
            assert torch.equal(labels[sup], ids[sup])  # supervised tokens are their own targets
            assert not sup[ids == IMAGE_TOKEN_INDEX].any()  # visual tokens never supervised
            text = tok.decode(ids[sup].tolist())
            assert text.count('<SEG>') == int((sample.input_ids == model.llm.seg_token_id).sum())
            assert text.count('<|end|>') == text.count('<SEG>')  # one answer (+ end) per turn
            assert '<p>' not in text and '<|user|>' not in text and 'segment' not in text.lower()
        out = model.llm(merged['inputs_embeds'], merged['attention_mask'], labels=merged['labels'])
        logits = out.logits[:, :-1].float()
        target = merged['labels'][:, 1:]
        manual = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                 ignore_index=IGNORE_INDEX)
        assert torch.allclose(out.loss, manual, atol=1e-5)
        model.train()
        losses = model(**data, mode='loss')
        model.eval()
    # training mode changes nothing in the LM (no dropout in the tiny Phi-3): the same number
    assert torch.allclose(losses['loss_llm'], manual, atol=1e-4)


def _capture_head(model, monkeypatch, method='loss'):
    captured = {}
    original = getattr(model.panoptic_head, method)

    def spy(x, samples, conditions, condition_mask, seg_embeds):
        captured.update(x=x, samples=samples, conditions=conditions, condition_mask=condition_mask,
                        seg_embeds=seg_embeds)
        return original(x, samples, conditions, condition_mask, seg_embeds)

    monkeypatch.setattr(model.panoptic_head, method, spy)
    return captured


def test_conditions_and_seg_embeds_hand_computed(model, shapes_root, tiny_tokenizer_dir, monkeypatch):
    """Conditions = mean of the projected hidden states over <p>..</p> (inclusive); the <SEG> embedding is
    the projected hidden state at <SEG>; both reach the head unchanged, one decoder item per sample."""
    model.eval()
    data = batch_of(model, 'genseg', shapes_root, tiny_tokenizer_dir)
    samples = data['data_samples']
    captured = _capture_head(model, monkeypatch)
    with torch.no_grad():
        model(**data, mode='loss')
        visual = model._encode_images(data['inputs'], data['encoder_inputs'], samples)
        merged = _merged(model, samples, visual)
        hidden = model.llm(merged['inputs_embeds'], merged['attention_mask']).hidden_states[-1]
        projected = model.llm_projector(hidden)
    llm = model.llm
    assert len(captured['samples']) == len(samples)
    for b in range(len(samples)):
        ids = merged['expanded_ids'][b].tolist()
        starts = [i for i, t in enumerate(ids) if t == llm.p_start_id]
        ends = [i for i, t in enumerate(ids) if t == llm.p_end_id]
        assert len(starts) == len(samples[b].metainfo['phrases']) == len(ends) > 0
        k = len(starts)
        for j, (s, e) in enumerate(zip(starts, ends)):
            expected = projected[b, s:e + 1].mean(0)
            assert torch.allclose(captured['conditions'][b, j], expected, atol=1e-5)
        assert captured['condition_mask'][b, :k].all() and not captured['condition_mask'][b, k:].any()
        seg_pos = ids.index(llm.seg_token_id)
        assert torch.allclose(captured['seg_embeds'][b], projected[b, seg_pos], atol=1e-5)
        # targets: the sample's own instances, labels indexing its phrases
        assert torch.equal(captured['samples'][b].gt_instances.labels, samples[b].gt_instances.labels)


def test_seg_embed_changes_the_queries(model, shapes_root, tiny_tokenizer_dir):
    """<SEG> injection: the decoder output depends on the <SEG> embedding added to the queries."""
    model.eval()
    data = batch_of(model, 'genseg', shapes_root, tiny_tokenizer_dir, indices=(0, ), training=False)
    with torch.no_grad():
        visual = model._encode_images(data['inputs'], data['encoder_inputs'], data['data_samples'])
        x = model.neck([visual['sam'][i] for i in model.neck_in_indices])
        cond = torch.randn(1, 3, model.panoptic_head.decoder_embed_dims)
        seg = torch.randn(1, model.panoptic_head.decoder_embed_dims)
        a = model.panoptic_head(x, data['data_samples'], cond, None, seg)
        b = model.panoptic_head(x, data['data_samples'], cond, None, seg * 0)
        c = model.panoptic_head(x, data['data_samples'], cond, None, None)
    assert not torch.allclose(a[0][-1], b[0][-1])
    assert torch.allclose(b[0][-1], c[0][-1])  # a zero <SEG> is no <SEG>


def test_referring_items_are_contrastive_in_training(model, shapes_root, tiny_tokenizer_dir, monkeypatch):
    model.train()
    data = batch_of(model, 'refseg', shapes_root, tiny_tokenizer_dir)
    samples = data['data_samples']
    captured = _capture_head(model, monkeypatch)
    model(**data, mode='loss')
    num_expr = sum(len(s.metainfo['phrases']) for s in samples)
    assert len(captured['samples']) == num_expr  # one decoder item per expression
    assert captured['conditions'].shape[:2] == (num_expr, num_expr)
    for i in range(1, num_expr):  # every item classifies against the same stack of all expressions
        assert torch.equal(captured['conditions'][i], captured['conditions'][0])
    labels = [s.gt_instances.labels.unique().tolist() for s in captured['samples']]
    assert labels == [[i] for i in range(num_expr)]  # the target is the item's own expression


def test_predict_teacher_forcing_per_task(model, shapes_root, tiny_tokenizer_dir):
    model.eval()
    for task in SEG_TASKS:
        # the GCG evaluation split has no answers (always generated): teacher-force the training captions
        data = batch_of(model, task, shapes_root, tiny_tokenizer_dir, training=False, test_mode=task != 'gcgseg')
        with torch.no_grad():
            out = model(**data, mode='predict')
        for sample in out:
            h, w = sample.metainfo['ori_shape']
            assert 'pred_text' not in sample  # teacher forcing generates nothing
            if task == 'genseg':
                assert sample.pred_panoptic_seg.sem_seg.shape == (1, h, w)
                assert sample.pred_sem_seg.sem_seg.max() < len(sample.metainfo['phrases'])
            else:
                assert sample.pred_instances.masks.shape[1:] == (h, w)
            if task in ('refseg', 'reaseg'):
                assert sample.pred_sem_seg.sem_seg.shape == (1, h, w)
                assert set(sample.pred_sem_seg.sem_seg.unique().tolist()) <= {0, 1}
            if task == 'gcgseg':  # one mask per phrase of the caption
                assert len(sample.pred_instances) == len(sample.metainfo['phrases'])


def test_predict_interactive_picks_one_mask(model, shapes_root, tiny_tokenizer_dir):
    """intseg: one mask per sample, chosen among the candidates by agreement with the prompt; the prompt
    may come at the original size (evaluation pipelines load annotations after the resize)."""
    model.eval()
    dataset = task_dataset('intseg', shapes_root, tiny_tokenizer_dir, test_mode=True)
    dataset.pipeline.transforms.insert(2, dataset.pipeline.transforms.pop(1))  # annotations after the resize
    dataset.pipeline.transforms[1].scale = (96, 96)  # so the image (96) and the prompt (128) sizes differ
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in (0, 1)]), training=False)
    with torch.no_grad():
        out = model(**data, mode='predict')
    for sample in out:
        h, w = sample.metainfo['ori_shape']
        assert tuple(sample.metainfo['img_shape'][:2]) == (96, 96) != (h, w)
        assert sample.pred_instances.masks.shape == (1, h, w)
        assert sample.pred_sem_seg.sem_seg.shape == (1, h, w)


def test_generation_batch_equals_single(repo_root, tiny_tokenizer_dir, shapes_root):
    """Left-padded batched generation gives each sample the answer it gets alone."""
    init_default_scope('mmdet')
    torch.manual_seed(1)
    gen = MODELS.build(model_cfg(repo_root, tiny_tokenizer_dir, mode='generation', max_new_tokens=6)).eval()
    indices = (0, 3, 5)
    data = batch_of(gen, 'refseg', shapes_root, tiny_tokenizer_dir, indices=indices, training=False, test_mode=True)
    lengths = {len(s.input_ids) for s in data['data_samples']}
    assert len(lengths) > 1  # prompts of different lengths: padding matters
    with torch.no_grad():
        batched = gen(**data, mode='predict')
        singles = [gen(**batch_of(gen, 'refseg', shapes_root, tiny_tokenizer_dir, indices=(i, ), training=False,
                                  test_mode=True), mode='predict')[0] for i in indices]
    for b, s in zip(batched, singles):
        assert isinstance(b.pred_text, str) and b.pred_text == s.pred_text


def test_generation_with_seg_gives_masks(repo_root, tiny_tokenizer_dir, shapes_root, monkeypatch):
    """Generation mode reads <SEG> and the conditions off prompt + generated answer."""
    init_default_scope('mmdet')
    torch.manual_seed(2)
    gen = MODELS.build(model_cfg(repo_root, tiny_tokenizer_dir, mode='generation', max_new_tokens=4)).eval()
    tok = gen.llm.tokenizer
    answer = torch.tensor(tok.encode('Sure, <SEG>.', add_special_tokens=False) + [gen.llm.stop_token_ids[0]])

    class Out:
        sequences = torch.stack([answer, answer])

    monkeypatch.setattr(gen.llm, 'generate', lambda *a, **k: Out())
    data = batch_of(gen, 'refseg', shapes_root, tiny_tokenizer_dir, indices=(0, 1), training=False, test_mode=True)
    with torch.no_grad():
        out = gen(**data, mode='predict')
    for sample in out:
        assert sample.pred_text == 'Sure, <SEG>.'
        assert sample.pred_instances.masks.shape[0] == 1


def test_errors_name_the_sample(model, shapes_root, tiny_tokenizer_dir):
    model.train()
    # a <SEG> with no condition to classify against
    data = batch_of(model, 'refseg', shapes_root, tiny_tokenizer_dir)
    sample = data['data_samples'][1]
    llm = model.llm
    keep = (sample.input_ids != llm.p_start_id) & (sample.input_ids != llm.p_end_id)
    sample.input_ids, sample.lm_labels = sample.input_ids[keep], sample.lm_labels[keep]
    with pytest.raises(ValueError, match=r"sample 1 \(.*shapes_train_.*\) \(task 'refseg'\).*no <p>"):
        model(**data, mode='loss')
    # a <region> whose prompt mask is missing
    data = batch_of(model, 'vgdseg', shapes_root, tiny_tokenizer_dir)
    del data['data_samples'][0].gt_vprompts
    with pytest.raises(ValueError, match=r'sample 0 .*<region> placeholder\(s\) but 0 visual prompt mask'):
        model(**data, mode='loss')
    # an empty prompt mask
    data = batch_of(model, 'vgdseg', shapes_root, tiny_tokenizer_dir)
    data['data_samples'][0].gt_vprompts.masks.masks[0][:] = 0
    with pytest.raises(ValueError, match=r'sample 0 .*prompt mask 0 of sample 0 is empty'):
        model(**data, mode='loss')


def test_constructor_checks(repo_root, tiny_tokenizer_dir):
    init_default_scope('mmdet')
    cfg = model_cfg(repo_root, tiny_tokenizer_dir)
    bad = copy.deepcopy(cfg)
    bad.panoptic_head.cls_mode = 'linear'
    bad.panoptic_head.loss_cls.class_weight = None
    with pytest.raises(ValueError, match="cls_mode='conditioned'"):
        MODELS.build(bad)
    bad = copy.deepcopy(cfg)
    bad.llm_projector = None
    with pytest.raises(ValueError, match='needs llm_projector'):
        MODELS.build(bad)
    bad = copy.deepcopy(cfg)
    bad.test_cfg.mode = 'beam'
    with pytest.raises(ValueError, match='test_cfg.mode'):
        MODELS.build(bad)
    bad = copy.deepcopy(cfg)
    bad.frozen_modules = ('decoder', )
    with pytest.raises(ValueError, match="no module 'decoder'"):
        MODELS.build(bad)


def test_generated_answer_without_seg_is_an_empty_mask(repo_root, tiny_tokenizer_dir, shapes_root, monkeypatch):
    """A referring answer without <SEG> is predicted as an empty mask (scored as a miss), with a warning."""
    init_default_scope('mmdet')
    gen = MODELS.build(model_cfg(repo_root, tiny_tokenizer_dir, mode='generation', max_new_tokens=4)).eval()
    answer = torch.tensor(gen.llm.tokenizer.encode('No.', add_special_tokens=False) + [gen.llm.stop_token_ids[0]])

    class Out:
        sequences = answer[None]

    monkeypatch.setattr(gen.llm, 'generate', lambda *a, **k: Out())
    data = batch_of(gen, 'refseg', shapes_root, tiny_tokenizer_dir, indices=(0, ), training=False, test_mode=True)
    with torch.no_grad():
        sample = gen(**data, mode='predict')[0]
    h, w = sample.metainfo['ori_shape']
    assert sample.pred_text == 'No.'
    assert sample.pred_sem_seg.sem_seg.shape == (1, h, w) and not sample.pred_sem_seg.sem_seg.any()
    assert len(sample.pred_instances) == 0


def test_cross_image_vgd_prompts_come_from_another_image(model, shapes_root, tiny_tokenizer_dir, monkeypatch):
    """vgd_prompt_source='cross_image': a slot's region feature is read from another sample's image (one
    with the slot's category), at the other sample's prompt."""
    model.eval()
    dataset = task_dataset('vgdseg', shapes_root, tiny_tokenizer_dir, test_mode=True)
    cats = [set(dataset.prepare_data(i)['data_samples'].metainfo['category_ids']) for i in range(len(dataset))]
    pair = next((i, j) for i in range(len(cats)) for j in range(i + 1, len(cats)) if cats[i] & cats[j])
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in pair]), training=False)
    samples = data['data_samples']
    calls = []
    original = model.region_sampler.forward

    def spy(features, masks, generator=None, grid_size=None):
        calls.append((features, masks[0]))
        return original(features, masks, generator=generator, grid_size=grid_size)

    monkeypatch.setattr(model.region_sampler, 'forward', spy)
    monkeypatch.setitem(model.test_cfg, 'vgd_prompt_source', 'cross_image')
    with torch.no_grad():
        visual = model._encode_images(data['inputs'], data['encoder_inputs'], samples)
        tokens = model._region_tokens(visual, samples)
    shared = sorted(cats[pair[0]] & cats[pair[1]])[0]
    other_slot = list(samples[1].metainfo['category_ids']).index(shared)
    other_mask = model._padded_prompts(samples[1], 1, visual['seg_tokens'].device)[other_slot]
    # sample 0's call for the shared category read image 1 at image 1's prompt
    assert any(torch.equal(f, visual['seg_tokens'][1:2]) and torch.equal(m[0], other_mask) for f, m in calls)
    assert tokens[0].shape[0] == len(samples[0].metainfo['category_ids'])
