"""``last://WORK_DIR`` checkpoint paths (stage hand-off)."""
import os.path as osp

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

import mmxsam  # noqa: F401  (registers the scheme)
from mmxsam.utils import resolve_last_checkpoint


def test_resolves_the_record_and_loads(tmp_path):
    ckpt = tmp_path / 'iter_7.pth'
    torch.save(dict(state_dict=dict(weight=torch.ones(2))), ckpt)
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    assert resolve_last_checkpoint(f'last://{tmp_path}') == str(ckpt)
    assert resolve_last_checkpoint(str(ckpt)) == str(ckpt)  # other paths unchanged
    loaded = CheckpointLoader.load_checkpoint(f'last://{tmp_path}', map_location='cpu')
    assert torch.equal(loaded['state_dict']['weight'], torch.ones(2))
    module = torch.nn.Linear(1, 2, bias=False)
    module.weight.data.zero_()
    torch.save(dict(state_dict=dict(weight=torch.ones(2, 1))), ckpt)
    load_checkpoint(module, f'last://{tmp_path}')
    assert torch.equal(module.weight.data, torch.ones(2, 1))


def test_moved_work_dir_uses_the_file_name(tmp_path):
    (tmp_path / 'iter_3.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text('/somewhere/else/iter_3.pth')
    assert resolve_last_checkpoint(f'last://{tmp_path}') == osp.join(str(tmp_path), 'iter_3.pth')


def test_missing_record_or_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='last_checkpoint does not exist; train that stage first'):
        resolve_last_checkpoint(f'last://{tmp_path}')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'gone.pth'))
    with pytest.raises(FileNotFoundError, match="names .*gone.pth', which does not exist"):
        resolve_last_checkpoint(f'last://{tmp_path}')
