"""Resume under torch's ``weights_only=True`` default, without allowing arbitrary unpickling."""
import os
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner

import mmxsam  # noqa: F401
from mmxsam.utils import unsafe_globals_in

CONFIG = 'configs/baselines/mask2former_r18_tiny_shapes_panoptic.py'


def _tiny_cfg(repo_root, shapes_root, work_dir, max_iters):
    cfg = Config.fromfile(osp.join(repo_root, CONFIG))
    cfg.work_dir = work_dir
    cfg.train_dataloader.dataset.data_root = shapes_root
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10 ** 6)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=2)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook')
    cfg.param_scheduler = dict(type='MultiStepLR', by_epoch=False, begin=0, end=100, milestones=[3], gamma=0.1)
    return cfg


@pytest.mark.slow
def test_train_two_iterations_resume_and_continue(repo_root, shapes_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(_tiny_cfg(repo_root, shapes_root, work_dir, max_iters=2))
    runner.train()
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.exists(ckpt)
    assert unsafe_globals_in(ckpt) == []
    state = torch.load(ckpt, map_location='cpu')  # torch's default: weights_only=True
    assert state['meta']['iter'] == 2 and {'message_hub', 'optimizer', 'param_schedulers'} <= set(state)

    cfg = _tiny_cfg(repo_root, shapes_root, work_dir, max_iters=4)
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == 4
    assert osp.exists(osp.join(work_dir, 'iter_4.pth'))
    # the message hub came back: the loss history holds the first two iterations too
    assert len(resumed.message_hub.get_scalar('train/loss').data[0]) == 4
    # the scheduler state came back: the lr dropped at iteration 3 (milestone), not at 3 + 2
    assert resumed.optim_wrapper.get_lr()['lr'][0] == pytest.approx(4e-4 * 0.1 * 0.1)


def test_history_buffer_round_trips_without_getattr(tmp_path):
    buf = HistoryBuffer()
    for v in (1.0, 2.0, 6.0):
        buf.update(v)
    path = str(tmp_path / 'buf.pth')
    torch.save({'buf': buf}, path)
    assert unsafe_globals_in(path) == []
    loaded = torch.load(path)
    assert loaded['buf'].mean() == pytest.approx(3.0) and loaded['buf'].statistics('max') == 6.0


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_arbitrary_code_is_still_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'x': _Evil()}}, path)
    assert any('system' in name for name in unsafe_globals_in(path))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_getattr_is_not_allow_listed(tmp_path):
    """A legacy mmengine checkpoint pickles HistoryBuffer.min via builtins.getattr: refused, not executed."""
    path = str(tmp_path / 'legacy.pth')
    torch.save({'meta': {'methods': {'min': HistoryBuffer.min}}}, path)
    assert 'builtins.getattr' in unsafe_globals_in(path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
