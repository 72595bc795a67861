"""configs/_base_/datasets/xsam/: one file per public data set family, data sets only (no pipeline); every
entry builds (lazily: the real files are not here) with its registered class."""
import glob
import os.path as osp

import pytest
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401

FILES = sorted(glob.glob(osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets', 'xsam', '*.py')))


def entries(path):
    cfg = Config.fromfile(path)
    return {k: v for k, v in cfg.items() if not k.startswith('_') and isinstance(v, dict) and 'type' in v}


@pytest.mark.parametrize('path', FILES, ids=[osp.basename(f) for f in FILES])
def test_every_entry_builds_lazily(path):
    init_default_scope('mmdet')
    found = entries(path)
    assert found
    for name, entry in found.items():
        assert entry.data_root.startswith('data/'), name
        assert 'pipeline' not in entry, name  # the pipeline is the model's (mix / eval configs add it)
        evaluation = name.endswith(('_val', '_test', '_testA', '_testB')) or '_val_' in name or '_test_' in name
        assert bool(entry.get('test_mode', False)) == evaluation, name
        dataset = DATASETS.build(dict(entry, lazy_init=True, pipeline=[]))
        assert dataset.source_name == entry.source_name


def test_the_paper_sets_are_all_there():
    names = set()
    for path in FILES:
        names |= set(entries(path))
    expected = {'llava_pretrain_train', 'llava_665k_train', 'coco_panoptic_train', 'coco_panoptic_val',
                'ade20k_panoptic_val', 'refcoco_train', 'refcoco_plus_train', 'refcocog_train', 'refcoco_val',
                'refcoco_testA', 'refcoco_testB', 'refcoco_plus_val', 'refcoco_plus_testA', 'refcoco_plus_testB',
                'refcocog_val', 'refcocog_test', 'lisa_reasonseg_train', 'lisa_reasonseg_val', 'lisa_reasonseg_test',
                'lisa_reasonseg_test_long', 'lisa_reasonseg_test_short', 'grandf_gcg_train', 'refcocog_gcg_train',
                'psg_gcg_train', 'flickr_gcg_train', 'grandf_gcg_val', 'grandf_gcg_test', 'coco_vgd_train'} | {
                    f'coco_{kind}_val_{p}' for kind in ('vgd', 'interactive')
                    for p in ('point', 'scribble', 'box', 'mask')}
    assert names == expected
