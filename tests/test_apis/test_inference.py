"""mmxsam.apis: questions per task, init_xsam from a config (+ checkpoint), inference_xsam per task."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmxsam.apis import build_question, inference_xsam, init_xsam

CONFIG = 'configs/_base_/models/xsam_tiny.py'


def test_build_question():
    assert build_question('imgconv', 'How many?') == 'How many?'
    assert '<p>the red circle</p>' in build_question('refseg', 'the red circle')
    assert '<p>find the star</p>' in build_question('reaseg', 'find the star')
    assert '<p>circle</p>, <p>sky</p>' in build_question('genseg', categories=['circle', 'sky'])
    assert build_question('vgdseg', num_regions=2).count('<p><region></p>') == 2
    assert '{' not in build_question('gcgseg')
    for task, kwargs, msg in (('refseg', {}, 'needs text'), ('genseg', {}, 'needs categories'),
                              ('intseg', {}, 'at least one visual-prompt mask'), ('segment', {}, 'task must be')):
        with pytest.raises(ValueError, match=msg):
            build_question(task, **kwargs)


@pytest.fixture(scope='module')
def model_and_config(repo_root, tiny_tokenizer_dir, tmp_path_factory):
    cfg = Config.fromfile(f'{repo_root}/{CONFIG}')
    cfg.model.llm.tokenizer.name_or_path = tiny_tokenizer_dir
    cfg.model.init_cfg = [dict(type='Pretrained', checkpoint='last://no/such/dir')]  # must not be read
    cfg.default_scope = 'mmdet'
    torch.manual_seed(0)
    model = init_xsam(cfg)
    ckpt = str(tmp_path_factory.mktemp('ckpt') / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return model, cfg, ckpt


def test_init_loads_the_checkpoint(model_and_config):
    model, cfg, ckpt = model_and_config
    torch.manual_seed(123)  # a different initialisation, overwritten by the checkpoint
    again = init_xsam(cfg, ckpt)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert not again.training and again.cfg is not None


@pytest.mark.parametrize('task', ['imgconv', 'refseg', 'genseg', 'vgdseg'])
def test_inference_per_task(model_and_config, shapes_root, task):
    model = model_and_config[0]
    model.test_cfg['max_new_tokens'] = 5
    path = f'{shapes_root}/images/shapes_val_000000.jpg'
    image = cv2.imread(path)
    prompt = np.zeros(image.shape[:2], np.uint8)
    prompt[10:30, 10:30] = 1
    kwargs = dict(imgconv=dict(text='How many shapes?'), refseg=dict(text='the red circle'),
                  genseg=dict(categories=['circle', 'square', 'sky']), vgdseg=dict(vprompt_masks=[prompt]))[task]
    result = inference_xsam(model, path, task, **kwargs)
    assert isinstance(result.pred_text, str)
    assert result.metainfo['ori_shape'] == image.shape[:2]
    # the same from an array, and teacher forcing with a given answer always gives masks
    if task != 'imgconv':
        forced = inference_xsam(model, image, task, mode='teacher_forcing', answer='Sure, <SEG>.', **kwargs)
        assert 'pred_text' not in forced
        if task == 'genseg':
            assert forced.pred_panoptic_seg.sem_seg.shape[1:] == image.shape[:2]
        else:
            assert forced.pred_instances.masks.shape[1:] == image.shape[:2]
    assert model.test_cfg['mode'] == 'teacher_forcing'  # restored


def test_teacher_forcing_needs_an_answer(model_and_config, shapes_root):
    with pytest.raises(ValueError, match='needs the answer'):
        inference_xsam(model_and_config[0], f'{shapes_root}/images/shapes_val_000000.jpg', 'refseg', text='x',
                       mode='teacher_forcing')
