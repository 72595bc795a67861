"""DeepSpeed checkpoint folders -> one mmengine checkpoint (tools/model_converters/deepspeed_to_pth.py,
``deepspeed://``, ``last://`` on a DeepSpeed run), and trainable-only export (export_trainable.py).

The DeepSpeed checkpoints are real: a toy model trained by FlexibleRunner + DeepSpeedStrategy on the CPU
(gloo) - ZeRO-2 on 1 process and ZeRO-3 on 2 processes (2 partitions to merge). ZeRO-2 on 2 CPU processes
fails inside DeepSpeed 0.18.9's optimizer step (gloo all_gather_into_tensor: "Output 0 of Split is a view and
is being modified inplace"), so it is not used here. ZeRO-3 on gloo relies on ``build_runner`` waiting on every parameter
all-gather (mmxsam/utils/deepspeed_gloo.py: DeepSpeed waits on the last one only). The first DeepSpeed run on a machine JIT-builds
DeepSpeed's CPU communication op (about a minute, cached in ~/.cache/torch_extensions).
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModule

import mmxsam  # noqa: F401
from mmxsam.utils.deepspeed_checkpoint import is_deepspeed_checkpoint, load_deepspeed_checkpoint
from mmxsam.utils.trainable import select_trainable, trainable_parameter_names

TOY_KEYS = {'a.weight', 'a.bias', 'frozen.weight', 'frozen.bias', 'b.weight', 'b.bias', 'steps'}


def _train_toy(repo_root, work_dir, stage, nproc, port):
    cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', f'--master_port={port}',
           f'{repo_root}/tests/test_tools/deepspeed_toy_train.py', str(work_dir), str(stage)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    weights = torch.load(work_dir / 'final_weights.pt', weights_only=True)
    broken = sorted(k for k, v in weights.items() if not torch.isfinite(v).all())
    assert not broken, f'the toy trained to non-finite weights {broken}:\n' + (out.stdout + out.stderr)[-4000:]
    return weights


def _tool(repo_root, name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, f'{repo_root}/tools/model_converters/{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _ToyForInit(BaseModule):
    """The toy's layers as an mmengine module, to check ``init_cfg=Pretrained`` hand-off."""

    def __init__(self, checkpoint):
        super().__init__(init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
        self.a, self.frozen, self.b = torch.nn.Linear(4, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 3)
        self.register_buffer('steps', torch.zeros(3))


@pytest.mark.slow
@pytest.mark.parametrize('stage,nproc', [(2, 1), (3, 2)])
def test_real_deepspeed_checkpoint_converts_and_hands_off(repo_root, tmp_path, stage, nproc):
    work_dir = tmp_path / 'run'
    trained = _train_toy(repo_root, work_dir, stage, nproc, 29660 + stage)
    folder = str(work_dir / 'iter_3.pth')
    assert is_deepspeed_checkpoint(folder)
    out = str(tmp_path / 'converted.pth')
    deepspeed_to_pth = _tool(repo_root, 'deepspeed_to_pth')
    deepspeed_to_pth.main([folder, out])
    ckpt = torch.load(out, weights_only=True)  # a plain mmengine checkpoint (safe load, meta included)
    assert set(ckpt['state_dict']) == TOY_KEYS
    for key, value in trained.items():  # fp32 training: the merged fp32 master weights are the model's
        assert torch.equal(ckpt['state_dict'][key], value), key
    meta = ckpt['meta']
    assert (meta['zero_stage'], meta['dp_world_size'], meta['iter']) == (stage, nproc, 3)
    assert meta['converted_from'] == osp.normpath(folder)

    deepspeed_to_pth.main([folder, str(tmp_path / 'bf16.pth'), '--dtype', 'bf16', '--exclude-frozen'])
    small = torch.load(tmp_path / 'bf16.pth', weights_only=True)['state_dict']
    assert set(small) == TOY_KEYS - {'frozen.weight', 'frozen.bias'}
    assert small['a.weight'].dtype == torch.bfloat16 and torch.equal(small['a.weight'], trained['a.weight'].bfloat16())

    # stage hand-off through init_cfg: the converted file, the folder itself, the run's newest checkpoint
    for source in (out, f'deepspeed://{folder}', f'last://{work_dir}'):
        model = _ToyForInit(source)
        model.init_weights()
        for key, value in model.state_dict().items():
            assert torch.equal(value, trained[key]), (source, key)


def test_not_a_deepspeed_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        load_deepspeed_checkpoint(str(tmp_path / 'missing'))
    (tmp_path / 'file.pth').write_bytes(b'')
    with pytest.raises(ValueError, match='is a file, not a DeepSpeed checkpoint folder'):
        load_deepspeed_checkpoint(str(tmp_path / 'file.pth'))
    (tmp_path / 'iter_1.pth').mkdir()
    (tmp_path / 'iter_1.pth' / 'other.bin').write_bytes(b'')
    with pytest.raises(ValueError, match=r"no \*model_states.pt in it \(found: \['other.bin'\]\)"):
        load_deepspeed_checkpoint(str(tmp_path / 'iter_1.pth'))
    (tmp_path / 'iter_1.pth' / 'mp_rank_00_model_states.pt').write_bytes(b'')
    assert is_deepspeed_checkpoint(str(tmp_path / 'iter_1.pth'))
    with pytest.raises(ValueError, match=r'no \*optim_states.pt'):
        load_deepspeed_checkpoint(str(tmp_path / 'iter_1.pth'))


def test_trainable_names_of_the_tiny_stage2_are_the_projectors(repo_root, tiny_tokenizer_dir, tmp_path):
    cfg = Config.fromfile(osp.join(repo_root, 'configs/xsam/tiny_align_pretrain.py'))
    cfg.model.llm.tokenizer.name_or_path = tiny_tokenizer_dir
    cfg.dump(str(tmp_path / 'stage2.py'))
    names = trainable_parameter_names(str(tmp_path / 'stage2.py'))
    assert names and {n.split('.')[0] for n in names} == {'vision_projector', 'seg_projector'}
    state = {n: torch.zeros(1) for n in names} | {'llm.lm_head.weight': torch.zeros(1)}
    kept, dropped = select_trainable(state, names, 'tiny_align_pretrain')
    assert set(kept) == names and dropped == ['llm.lm_head.weight']
    missing = dict(list(state.items())[1:])
    with pytest.raises(KeyError, match='1 parameter.* that train under tiny_align_pretrain are not in the checkpoint'):
        select_trainable(missing, names, 'tiny_align_pretrain')

    # the tool: a full checkpoint in, the projectors out, loadable with weights_only
    torch.save(dict(meta=dict(iter=7), state_dict=state), tmp_path / 'full.pth')
    _tool(repo_root, 'export_trainable').main([str(tmp_path / 'stage2.py'), str(tmp_path / 'full.pth'),
                                               str(tmp_path / 'trainable.pth'), '--dtype', 'bf16'])
    out = torch.load(tmp_path / 'trainable.pth', weights_only=True)
    assert set(out['state_dict']) == names and all(v.dtype == torch.bfloat16 for v in out['state_dict'].values())
    assert out['meta']['iter'] == 7 and out['meta']['num_dropped'] == 1
