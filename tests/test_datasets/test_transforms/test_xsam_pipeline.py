"""LoadXSAMAnnotations -> XSAMResize -> PackXSAMInputs on records built from the synthetic data."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401
from mmxsam.datasets.transforms import conversation_pairs
from mmxsam.datasets.utils import decode_mask
from mmxsam.models.language import IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX, build_tokenizer


@pytest.fixture(scope='module')
def vgd_record(shapes_root):
    with open(osp.join(shapes_root, 'vgd', 'vgd_val.json')) as f:
        rec = next(r for r in json.load(f) if len(r['annotations']) >= 2)
    anns = rec['annotations'][:2]
    return dict(
        img_path=osp.join(shapes_root, 'images', rec['image_file']), img_id=rec['image_id'],
        height=rec['image_size'][0], width=rec['image_size'][1], task='vgdseg', source='shapes_vgd',
        conversations=[{'from': 'human', 'value': '<image>\nSegment <p><region></p>, <p><region></p>.'},
                       {'from': 'gpt', 'value': 'Sure, <SEG>.'}],
        phrases=['<region>', '<region>'],
        instances=[dict(mask=a['segmentation'], label=k, ignore_flag=0) for k, a in enumerate(anns)],
        vprompts=[a['visual_prompts']['box_visual_prompt'] for a in anns],
        ignore_mask=anns[1]['segmentation'])


def pipeline(tokenizer_dir, scale=(256, 256)):
    init_default_scope('mmdet')
    return Compose([
        dict(type='LoadImageFromFile'),
        dict(type='LoadXSAMAnnotations'),
        dict(type='XSAMResize', scale=scale, keep_ratio=True),
        dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tokenizer_dir), max_length=256),
    ])


def test_pipeline_packs_masks_prompts_and_tokens(vgd_record, tiny_tokenizer_dir):
    out = pipeline(tiny_tokenizer_dir)(dict(vgd_record))
    sample = out['data_samples']
    assert out['inputs'].shape == (3, 256, 256)
    inst = sample.gt_instances
    assert inst.masks.masks.dtype == np.uint8 and inst.masks.masks.shape == (2, 256, 256)  # lean, not int64
    assert inst.labels.tolist() == [0, 1]
    # each label keeps its own mask: compare with the record's segmentation, resized the same way
    for k in range(2):
        ref = decode_mask(vgd_record['instances'][k]['mask'], 128, 128)
        up = np.kron(ref, np.ones((2, 2), np.uint8)).astype(bool)  # 128 -> 256, nearest
        assert (inst.masks.masks[k].astype(bool) == up).mean() > 0.99
    assert sample.gt_vprompts.masks.masks.shape == (2, 256, 256)
    assert sample.gt_ignore_mask.sem_seg.shape == (1, 256, 256)
    ids, labels = sample.input_ids, sample.lm_labels
    assert ids.dtype == torch.long and ids.shape == labels.shape
    assert (ids == IMAGE_TOKEN_INDEX).sum() == 1 and (ids == REGION_TOKEN_INDEX).sum() == 2
    tok = build_tokenizer(dict(name_or_path=tiny_tokenizer_dir))
    supervised = tok.decode(ids[labels != -100].tolist())
    assert supervised == 'Sure, <SEG>.<|end|>'
    meta = sample.metainfo
    assert meta['task'] == 'vgdseg' and meta['has_image'] is True and meta['phrases'] == ['<region>', '<region>']


def test_generation_prompt_and_pure_text(tiny_tokenizer_dir):
    out = pipeline(tiny_tokenizer_dir).transforms[-1](dict(
        img_id=0, conversations=[{'from': 'human', 'value': 'How many corners does a square have?'}]))
    sample = out['data_samples']
    assert sample.metainfo['has_image'] is False and out['inputs'].shape == (3, 32, 32)
    assert (sample.lm_labels == -100).all()  # a generation prompt supervises nothing
    tok = build_tokenizer(dict(name_or_path=tiny_tokenizer_dir))
    assert tok.decode(sample.input_ids.tolist()).endswith('<|assistant|>\n')


def test_bad_records_are_named(vgd_record, tiny_tokenizer_dir):
    from mmxsam.datasets.utils import encode_mask
    rec = dict(vgd_record, instances=[dict(mask=encode_mask(np.zeros((128, 128), np.uint8)), label=0)])
    with pytest.raises(ValueError, match=r'img_id=.*: instance masks \[0\] are empty'):
        pipeline(tiny_tokenizer_dir)(rec)
    rec = dict(vgd_record, instances=[dict(mask=encode_mask(np.ones((64, 64), np.uint8)), label=0)])
    with pytest.raises(ValueError, match=r'img_id=.*: instance 0 cannot be decoded: RLE size \[64, 64\]'):
        pipeline(tiny_tokenizer_dir)(rec)
    rec = dict(vgd_record, vprompts=[encode_mask(np.zeros((128, 128), np.uint8))])
    with pytest.raises(ValueError, match=r'visual prompts \[0\] are empty'):
        pipeline(tiny_tokenizer_dir)(rec)
    with pytest.raises(ValueError, match=r"turn 1 is from 'human', expected 'gpt'"):
        conversation_pairs([{'from': 'human', 'value': 'a'}, {'from': 'human', 'value': 'b'}], 'sample 3')
    with pytest.raises(ValueError, match='empty conversation'):
        conversation_pairs([], 'sample 3')


def test_if_has_image_skips_pure_text_samples(vgd_record, tiny_tokenizer_dir):
    init_default_scope('mmdet')
    pipe = Compose([
        dict(type='IfHasImage', transforms=[dict(type='LoadImageFromFile'), dict(type='LoadXSAMAnnotations'),
                                             dict(type='XSAMResize', scale=(256, 256), keep_ratio=True)]),
        dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tiny_tokenizer_dir)),
    ])
    text = pipe(dict(img_path=None, img_id='t0', conversations=[
        {'from': 'human', 'value': 'How many corners does a square have?'},
        {'from': 'gpt', 'value': 'A square has four corners.'}]))
    assert text['data_samples'].metainfo['has_image'] is False and text['inputs'].shape == (3, 32, 32)
    image = pipe(dict(vgd_record))
    assert image['data_samples'].metainfo['has_image'] is True and image['inputs'].shape == (3, 256, 256)
