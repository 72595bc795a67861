"""XSAMInferencer: every task in one batched call, batch == single, cross-image prompts, forcing the
segmentation answer, outputs on disk, work-dir loading and the bad inputs named in issue 8."""
import copy
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from pycocotools import mask as mask_utils

from mmxsam.apis import XSAMInferencer

CONFIG = 'configs/_base_/models/xsam_tiny.py'
CATEGORIES = ['circle', 'square', 'sky']


@pytest.fixture(scope='module')
def tiny_cfg(repo_root, tiny_tokenizer_dir):
    cfg = Config.fromfile(f'{repo_root}/{CONFIG}')
    cfg.model.llm.tokenizer.name_or_path = tiny_tokenizer_dir
    cfg.model.init_cfg = [dict(type='Pretrained', checkpoint='last://no/such/dir')]  # never read
    cfg.model.test_cfg.max_new_tokens = 4
    cfg.default_scope = 'mmdet'
    return cfg


@pytest.fixture(scope='module')
def checkpoint(tiny_cfg, tmp_path_factory):
    torch.manual_seed(0)
    inferencer = XSAMInferencer(tiny_cfg)
    path = str(tmp_path_factory.mktemp('ckpt') / 'model.pth')
    torch.save(dict(state_dict=inferencer.model.state_dict()), path)
    return path


@pytest.fixture(scope='module')
def inferencer(tiny_cfg, checkpoint):
    return XSAMInferencer(tiny_cfg, checkpoint)


@pytest.fixture(scope='module')
def images(shapes_root):
    return [f'{shapes_root}/images/shapes_val_{i:06d}.jpg' for i in range(3)]


def requests(images):
    point = dict(type='point', xy=(20, 24))
    return [
        dict(img=images[0], task='imgconv', text='How many shapes?'),
        dict(img=images[0], task='refseg', text='the red circle', answer='Sure, <SEG>.'),
        dict(img=images[1], task='genseg', categories=CATEGORIES, stuff=['sky'], answer='<SEG>.'),
        dict(img=images[1], task='vgdseg', vprompts=[point, dict(type='box', xyxy=(5, 5, 40, 30))], answer='<SEG>.'),
        dict(img=images[2], task='intseg', vprompts=[dict(type='scribble', points=[(5, 5), (30, 20)])],
             answer='<SEG>.'),
        dict(img=images[2], task='vgdseg', vprompts=[point], prompt_img=images[0], answer='<SEG>.'),
    ]


def test_every_task_batched(inferencer, images, tmp_path):
    out = inferencer(requests(images), batch_size=4, out_dir=str(tmp_path), return_vis=True)
    preds = out['predictions']
    assert [p['task'] for p in preds] == ['imgconv', 'refseg', 'genseg', 'vgdseg', 'intseg', 'vgdseg']
    for i, (pred, image) in enumerate(zip(preds, [images[j] for j in (0, 0, 1, 1, 2, 2)])):
        h, w = cv2.imread(image).shape[:2]
        assert len(pred['masks']) == len(pred['scores']) == len(pred['labels']) == len(pred['names'])
        for rle in pred['masks']:
            assert tuple(mask_utils.decode(dict(rle, counts=rle['counts'].encode())).shape) == (h, w)
        if pred['task'] != 'imgconv' and not pred['masks']:
            assert pred['warnings'], pred  # never empty without saying why
        stem = f"{i:05d}_{osp.splitext(osp.basename(image))[0]}_{pred['task']}"
        with open(tmp_path / 'preds' / f'{stem}.json') as f:
            assert json.load(f)['question'] == pred['question']
        assert cv2.imread(str(tmp_path / 'vis' / f'{stem}.png')) is not None
    assert isinstance(preds[0]['answer'], str) and preds[0]['forced'] is False  # generated
    assert preds[1]['answer'] == 'Sure, <SEG>.' and preds[1]['names'] == ['the red circle'] * len(preds[1]['masks'])
    assert len(preds[1]['masks']) == 1 and len(preds[4]['masks']) == 1  # one mask per expression / prompt
    genseg = preds[2]
    assert osp.isfile(genseg['panoptic_seg'])
    assert all(n in CATEGORIES for n in genseg['names'])
    assert [s['label'] for s in genseg['segments_info']] == genseg['labels']
    assert all(s['isthing'] == (CATEGORIES[s['label']] != 'sky') for s in genseg['segments_info'])
    assert set(preds[3]['names']) <= {'region 0', 'region 1'}
    assert len(out['visualization']) == 6


def test_batch_equals_single(inferencer, images):
    reqs = requests(images)
    batched = inferencer(reqs, batch_size=6)['predictions']
    single = inferencer(reqs, batch_size=1)['predictions']
    for a, b in zip(batched, single):
        assert a['answer'] == b['answer'] and a['labels'] == b['labels'] and a['masks'] == b['masks']
        np.testing.assert_allclose(a['scores'], b['scores'], atol=1e-3)


def test_generic_requests_with_their_own_stuff_share_a_batch(inferencer, images):
    """Each genseg request carries its thing/stuff split to the fusion head (sample metainfo): one batch of
    three splits equals three single calls, and the head's own split is left as it was."""
    head = inferencer.model.panoptic_fusion_head
    own_split, saved_cfg = (head.num_things_classes, head.num_stuff_classes), copy.deepcopy(head.test_cfg)
    head.test_cfg.update(object_mask_thr=0.0, iou_thr=0.0, mask_thr=0.0, fg_only_label=True)  # random model: keep all
    try:
        reqs = [dict(img=images[1], task='genseg', categories=CATEGORIES, stuff=stuff, answer='<SEG>.')
                for stuff in ([], ['sky'], CATEGORIES)]
        batched = inferencer(reqs, batch_size=3)['predictions']
        single = [inferencer(r)['predictions'][0] for r in reqs]
    finally:
        head.test_cfg = saved_cfg
    assert (head.num_things_classes, head.num_stuff_classes) == own_split
    for a, b in zip(batched, single):
        assert a['segments_info'] == b['segments_info'] and a['masks'] == b['masks']
    none, sky, every = (p['segments_info'] for p in batched)
    assert none and sky and every
    assert all(s['isthing'] for s in none) and not any(s['isthing'] for s in every)
    assert all(s['isthing'] == (CATEGORIES[s['label']] != 'sky') for s in sky)
    labels = [s['label'] for s in every]
    assert len(labels) == len(set(labels))  # stuff: one merged segment per class


def test_cross_image_prompt_from_the_same_image_equals_single_image(inferencer, images):
    prompt = [dict(type='box', xyxy=(5, 5, 40, 30))]
    same = inferencer(dict(img=images[1], task='vgdseg', vprompts=prompt, answer='<SEG>.'))['predictions'][0]
    cross = inferencer(dict(img=images[1], task='vgdseg', vprompts=prompt, prompt_img=images[1], answer='<SEG>.'),
                       pred_score_thr=0.0)['predictions'][0]
    same_all = inferencer(dict(img=images[1], task='vgdseg', vprompts=prompt, answer='<SEG>.'),
                          pred_score_thr=0.0)['predictions'][0]
    assert cross['masks'] == same_all['masks'] and cross['labels'] == same_all['labels']
    assert len(same['masks']) <= len(same_all['masks'])  # pred_score_thr 0.3 by default


def test_cross_image_prompt_changes_the_result(inferencer, images):
    prompt = [dict(type='box', xyxy=(5, 5, 40, 30))]
    own = inferencer(dict(img=images[2], task='vgdseg', vprompts=prompt, answer='<SEG>.'),
                     pred_score_thr=0.0)['predictions'][0]
    other = inferencer(dict(img=images[2], task='vgdseg', vprompts=prompt, prompt_img=images[0], answer='<SEG>.'),
                       pred_score_thr=0.0)['predictions'][0]
    assert own['scores'] != other['scores']  # the region feature is read from the other image


def test_force_seg(inferencer, images):
    request = dict(img=images[0], task='refseg', text='the red circle')
    plain = inferencer(request)['predictions'][0]
    assert '<SEG>' not in plain['answer']  # the untrained tiny LLM (4 new tokens) does not answer <SEG>
    assert plain['masks'] == [] and 'has no <SEG>' in plain['warnings'][0] and 'force_seg' in plain['warnings'][0]
    forced = inferencer(request, force_seg=True)['predictions'][0]
    assert forced['forced'] and forced['answer'] == '<SEG>.' and forced['generated'] == plain['answer']
    assert len(forced['masks']) == 1 and 'forced' in forced['warnings'][0]
    gcg = inferencer(dict(img=images[0], task='gcgseg'), force_seg=True)['predictions'][0]
    assert gcg['masks'] == [] and 'cannot be forced' in gcg['warnings'][0]


def test_call_level_defaults_and_datasamples(inferencer, images):
    out = inferencer(images[:2], task='refseg', text='the red circle', answer='<SEG>.', return_datasamples=True)
    assert len(out['predictions']) == 2
    sample = out['predictions'][0]
    assert sample.pred_instances.masks.shape[0] == 1 and sample.metainfo['forced'] is False


def test_work_dir_and_config_from_checkpoint(tiny_cfg, checkpoint, tmp_path, images):
    work = tmp_path / 'work'
    work.mkdir()
    tiny_cfg.dump(str(work / 'tiny.py'))
    ckpt = torch.load(checkpoint, map_location='cpu')
    ckpt['message_hub'] = dict(runtime_info=dict(cfg=tiny_cfg.pretty_text))
    torch.save(ckpt, work / 'iter_3.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_3.pth'))
    request = dict(img=images[0], task='refseg', text='x', answer='<SEG>.')
    a = XSAMInferencer(str(work))(request)['predictions'][0]
    b = XSAMInferencer(None, str(work / 'iter_3.pth'))(request)['predictions'][0]
    assert a['masks'] == b['masks'] and len(a['masks']) == 1


def test_lora_merged_after_loading(tiny_cfg, tmp_path, images):
    cfg = copy.deepcopy(tiny_cfg)  # the fixture is shared by the module
    cfg.model.llm.lora = dict(r=4, alpha=8, dropout=0.0)
    torch.manual_seed(1)
    with_lora = XSAMInferencer(cfg, merge_lora=False)
    assert with_lora.model.llm.has_lora
    for name, p in with_lora.model.llm.named_parameters():  # non-zero adapters, so merging matters
        if 'lora_B' in name:
            torch.nn.init.normal_(p, std=0.02)
    torch.save(dict(state_dict=with_lora.model.state_dict()), tmp_path / 'lora.pth')
    merged = XSAMInferencer(cfg, str(tmp_path / 'lora.pth'))
    assert not merged.model.llm.has_lora
    assert not any('lora' in n for n, _ in merged.model.named_parameters())
    request = dict(img=images[0], task='refseg', text='the red circle', answer='<SEG>.')
    a = with_lora(request, pred_score_thr=0.0)['predictions'][0]
    b = merged(request, pred_score_thr=0.0)['predictions'][0]
    assert a['masks'] == b['masks']
    np.testing.assert_allclose(a['scores'], b['scores'], atol=1e-4)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize('request_, message', [
    (dict(task='segment'), 'task must be one of'),
    (dict(task='refseg'), 'needs text'),
    (dict(task='refseg', text='   '), 'needs text'),
    (dict(task='genseg', categories=['circle', '']), 'are empty'),
    (dict(task='genseg', categories=['circle'], stuff=['sky']), "stuff class(es) ['sky'] are not among"),
    (dict(task='vgdseg'), 'needs visual prompts'),
    (dict(task='intseg', vprompts=[dict(type='point', xy=(1, 1))] * 2), 'exactly one visual prompt'),
    (dict(task='vgdseg', vprompts=[dict(type='point', xy=(500, 3))]), 'visual prompt 0: (500, 3) is outside'),
    (dict(task='vgdseg', vprompts=[dict(type='box', xyxy=(9, 9, 3, 20))]), 'has no area'),
    (dict(task='vgdseg', vprompts=[dict(type='lasso')]), "unknown prompt type 'lasso'"),
    (dict(task='vgdseg', vprompts=[np.zeros((3, 3))]), 'the mask is 3x3 but the image is'),
    (dict(task='refseg', text='x', prompt_img='x.jpg'), 'prompt_img'),
    (dict(task='refseg', text='x', answer='Sure.'), 'must contain <SEG>'),
    (dict(task='refseg', text='x', colour='red'), "unknown key(s) ['colour']"),
])
def test_bad_requests(inferencer, images, request_, message):
    with pytest.raises(ValueError, match='request 0: .*' + __import__('re').escape(message)):
        inferencer(dict(img=images[0], **request_))


def test_bad_images(inferencer, tmp_path, images):
    broken = tmp_path / 'broken.jpg'
    broken.write_text('not an image')
    with pytest.raises(ValueError, match="request 1: cannot read .*broken.jpg' as an image"):
        inferencer([images[0], str(broken)], task='imgconv', text='hi')
    with pytest.raises(ValueError, match="request 0: image file .*missing.jpg' does not exist"):
        inferencer(str(tmp_path / 'missing.jpg'), task='imgconv', text='hi')
    with pytest.raises(ValueError, match=r'\(H, W, 3\) BGR uint8'):
        inferencer(np.zeros((4, 4), np.float32), task='imgconv', text='hi')
    with pytest.raises(ValueError, match=r'request 0 \(prompt_img\): image file'):
        inferencer(dict(img=images[0], task='vgdseg', vprompts=[dict(type='point', xy=(1, 1))],
                        prompt_img=str(tmp_path / 'missing.jpg')))


def test_checkpoint_config_mismatch(tiny_cfg, checkpoint, tmp_path):
    state = torch.load(checkpoint, map_location='cpu')['state_dict']
    key = 'llm_projector.layers.0.weight' if 'llm_projector.layers.0.weight' in state else next(iter(state))
    wrong = dict(state)
    wrong[key] = torch.zeros(3, 3)
    torch.save(dict(state_dict=wrong), tmp_path / 'wrong.pth')
    with pytest.raises(ValueError, match=r'does not fit .*shape mismatch.*' + key.replace('.', r'\.')):
        XSAMInferencer(tiny_cfg, str(tmp_path / 'wrong.pth'))
    partial = {k: v for k, v in state.items() if not k.startswith('panoptic_head.')}
    torch.save(dict(state_dict=partial), tmp_path / 'partial.pth')
    with pytest.raises(ValueError, match=r'model key\(s\) missing from the checkpoint.*panoptic_head.*strict=False'):
        XSAMInferencer(tiny_cfg, str(tmp_path / 'partial.pth'))
    XSAMInferencer(tiny_cfg, str(tmp_path / 'partial.pth'), strict=False)  # loads what matches
    with pytest.raises(FileNotFoundError, match='checkpoint .*nothing.pth'):
        XSAMInferencer(tiny_cfg, str(tmp_path / 'nothing.pth'))
    with pytest.raises(ValueError, match='needs an X-SAM model'):
        XSAMInferencer(Config.fromfile('configs/xsam/tiny_seg_finetune.py'))
