"""configs/xsam/eval/: one config per benchmark of Tab. 2 (full size) and per synthetic task (tiny). Full-size
configs are checked by building their data sets lazily (the data is not here); every tiny one runs through
tools/test.py on the synthetic data (slow)."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmdet.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401

EVAL_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'xsam', 'eval')
FULL = sorted(f for f in glob.glob(osp.join(EVAL_DIR, '*.py')) if not osp.basename(f).startswith('tiny_'))
TINY = sorted(glob.glob(osp.join(EVAL_DIR, 'tiny_*.py')))
# Tab. 2's benchmarks
EXPECTED_FULL = {
    'coco_panoptic', 'ade20k_ov', 'refcoco_val', 'refcoco_testA', 'refcoco_testB', 'refcoco_plus_val',
    'refcoco_plus_testA', 'refcoco_plus_testB', 'refcocog_val', 'refcocog_test', 'reasonseg_val', 'reasonseg_test',
    'gcg_val', 'gcg_test'} | {f'{k}_{p}' for k in ('interactive', 'vgd', 'vgd_cross')
                              for p in ('point', 'scribble', 'box', 'mask')}


def _evaluators(cfg):
    return cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]


def test_every_benchmark_has_a_config():
    assert {osp.basename(f)[:-3] for f in FULL} == EXPECTED_FULL
    tasks = {osp.basename(f)[len('tiny_shapes_'):-3].split('_')[0] for f in TINY}
    assert tasks == {'genseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg', 'intseg', 'imgconv'}


@pytest.mark.parametrize('path', FULL, ids=[osp.basename(f) for f in FULL])
def test_full_size_eval_configs_build_lazily(path):
    init_default_scope('mmdet')
    cfg = Config.fromfile(path)
    ds = cfg.test_dataloader.dataset
    assert ds.test_mode and ds.data_root.startswith('data/')
    DATASETS.build(dict(ds, lazy_init=True, pipeline=[]))  # the Phi-3 tokenizer of the pipeline needs the hub
    for t in ds.pipeline:
        assert TRANSFORMS.get(t['type']) is not None, t['type']
    assert ds.pipeline[-1]['type'] == 'PackXSAMInputs'
    for ev in _evaluators(cfg):
        assert METRICS.get(ev['type']) is not None, ev['type']
    assert cfg.test_dataloader.sampler == dict(type='DefaultSampler', shuffle=False)
    assert cfg.model.type == 'XSAM' and cfg.model.test_cfg.object_mask_thr == 0.0


@pytest.fixture(scope='module')
def eval_dir(repo_root, tiny_tokenizer_dir, link_shapes_data, tmp_path_factory):
    """A working directory with data/shapes/ (the session's data + tiny tokenizer) and a tiny stage-3
    checkpoint (initialised weights: the test is about the evaluation path, not the numbers)."""
    cwd = link_shapes_data(tmp_path_factory.mktemp('eval'))
    cfg = Config.fromfile(f'{repo_root}/configs/xsam/tiny_mixed.py')
    cfg.model.llm.tokenizer.name_or_path = tiny_tokenizer_dir
    cfg.model.init_cfg = None
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), cwd / 'tiny.pth')
    return cwd


# (an untrained model may have no thing-class instance at all: mmdet's CocoMetric then only logs that)
EXPECTED_KEYS = dict(genseg=('coco_panoptic/PQ', 'Evaluating segm', 'sem_seg/mIoU'), refseg=('refer/cIoU', ),
                     reaseg=('reason/gIoU', 'reason/long/gIoU'), gcgseg=('gcg/AP50', 'gcg/mIoU', 'gcg/CIDEr'),
                     vgdseg=('/AP50', ), intseg=('/cIoU', ), imgconv=('chat/accuracy', ))


@pytest.mark.slow
@pytest.mark.parametrize('path', TINY, ids=[osp.basename(f) for f in TINY])
def test_tiny_eval_runs_from_tools_test(repo_root, eval_dir, path):
    task = osp.basename(path)[len('tiny_shapes_'):-3].split('_')[0]
    extra = ['model.test_cfg.max_new_tokens=8'] if task in ('gcgseg', 'imgconv') else []
    out = subprocess.run([sys.executable, f'{repo_root}/tools/test.py', path, 'tiny.pth', '--work-dir', 'work',
                          '--cfg-options', 'test_evaluator.export_file=work/chat.tsv' if task == 'imgconv'
                          else 'default_scope=mmdet', *extra], cwd=eval_dir, capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    for key in EXPECTED_KEYS[task]:
        assert key in log, (key, log[-2000:])
