"""Importing mmxsam registers into mmdet's registries; configs opt in with custom_imports."""
import os.path as osp
import subprocess
import sys


def test_import_registers_into_mmdet_models():
    code = ('from mmdet.registry import MODELS; import mmxsam; '
            "assert MODELS.get('XSAMSegConnector') is not None; "
            "assert MODELS.get('XSAMMLPConnector') is not None; "
            "assert MODELS.get('XSAMSingleScaleConnector') is not None; print('ok')")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith('ok')


def test_config_with_custom_imports_builds_through_registry(tmp_path):
    cfg_file = tmp_path / 'neck.py'
    cfg_file.write_text(
        "default_scope = 'mmdet'\n"
        "custom_imports = dict(imports=['mmxsam'], allow_failed_imports=False)\n"
        "model = dict(type='XSAMSegConnector', in_channels=16, hidden_channels=8, out_channels=[8, 16, 32])\n")
    code = (
        'from mmengine.config import Config; from mmengine.registry import init_default_scope; '
        f'cfg = Config.fromfile({str(cfg_file)!r}); init_default_scope(cfg.default_scope); '
        'from mmdet.registry import MODELS; import torch; '
        'm = MODELS.build(cfg.model); outs = m([torch.zeros(1, 16, 8, 8)] * 3); '
        'print(type(m).__name__, [tuple(o.shape) for o in outs])')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == 'XSAMSegConnector [(1, 8, 16, 16), (1, 16, 8, 8), (1, 32, 4, 4)]'


def test_default_runtime_config(repo_root):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(repo_root, 'configs', '_base_', 'default_runtime.py'))
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['mmxsam'], allow_failed_imports=False)
