"""Read the checkpoint folders that mmengine's ``DeepSpeedStrategy`` writes, as one fp32 mmengine checkpoint.

With ``save_optimizer=True`` (the default) ``FlexibleRunner`` + ``DeepSpeedStrategy`` saves ``iter_N.pth``
(or ``epoch_N.pth``) as a *folder*::

    iter_N.pth/mp_rank_00_model_states.pt                  (ZeRO-3: zero_pp_rank_0_mp_rank_00_model_states.pt)
                                                           module weights (bf16 under bf16 training; ZeRO-3:
                                                           placeholders) + mmengine's client state
                                                           (meta, message_hub, optim_wrapper, param_schedulers)
    iter_N.pth/zero_pp_rank_{r}_mp_rank_00_optim_states.pt  rank r's partition of the fp32 master weights and
    iter_N.pth/bf16_zero_pp_rank_{r}_...optim_states.pt     optimizer states (ZeRO-2 and ZeRO-3)

mmengine's ``load_from``/``Pretrained``/``load_checkpoint`` cannot read a folder. :func:`load_deepspeed_checkpoint`
merges the fp32 master partitions with DeepSpeed's own ``deepspeed.utils.zero_to_fp32`` (frozen parameters
and buffers come from the model states) and returns ``dict(meta=..., state_dict=...)``; the ``deepspeed://``
scheme and ``last://`` (when the newest checkpoint of a run is such a folder) use it, so stage hand-off through
``init_cfg`` works from DeepSpeed runs directly. ``tools/model_converters/deepspeed_to_pth.py`` writes the
result to a ``.pth``.

DeepSpeed's reader unpickles these files (``torch.load(weights_only=False)``): load only folders you trust.
"""
import glob
import os.path as osp
from typing import Dict, Optional

import torch

from .state_dict_dtype import cast_floating

SCHEME = 'deepspeed://'
MODEL_STATES = ('mp_rank_00_model_states.pt', 'zero_pp_rank_0_mp_rank_00_model_states.pt')  # ZeRO-1/2, ZeRO-3


def is_deepspeed_checkpoint(path: str) -> bool:
    """Whether ``path`` is a DeepSpeed checkpoint folder (holds ``*model_states.pt``)."""
    return osp.isdir(path) and bool(glob.glob(osp.join(path, '*model_states.pt')))


def _check_folder(path: str) -> None:
    if not osp.exists(path):
        raise FileNotFoundError(f'DeepSpeed checkpoint folder not found: {path}')
    if not osp.isdir(path):
        raise ValueError(f'{path} is a file, not a DeepSpeed checkpoint folder (load it with torch.load / '
                         'load_checkpoint directly)')
    found = sorted(osp.basename(p) for p in glob.glob(osp.join(path, '*')))
    if not glob.glob(osp.join(path, '*model_states.pt')):
        raise ValueError(f'{path} is not a DeepSpeed checkpoint folder: no *model_states.pt in it (found: '
                         f'{found[:10]})')
    if not glob.glob(osp.join(path, '*optim_states.pt')):
        raise ValueError(f'{path} holds no *optim_states.pt (the ZeRO partitions of the fp32 weights); found '
                         f'{found[:10]}. A ZeRO-3 folder saved without optimizer states cannot be merged')


def load_deepspeed_checkpoint(path: str, exclude_frozen_parameters: bool = False,
                              dtype: Optional[torch.dtype] = None) -> Dict[str, dict]:
    """One mmengine checkpoint ``dict(meta, state_dict[, message_hub])`` from a DeepSpeed ZeRO folder.

    Args:
        path: the folder (``work_dir/iter_N.pth``).
        exclude_frozen_parameters: leave out parameters that did not train (their weights are in the
            model states only if the run saved them: ``strategy.exclude_frozen_parameters=False``).
        dtype: cast floating-point tensors (e.g. ``torch.bfloat16`` to halve the file); default fp32.

    Returns:
        ``state_dict``: parameter and buffer name -> CPU tensor (names as in the mmengine model, no
        ``module.`` prefix); ``meta``: mmengine's meta of that checkpoint plus ``converted_from``.
    """
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    path = osp.normpath(path)
    _check_folder(path)
    states_file = next((osp.join(path, n) for n in MODEL_STATES if osp.isfile(osp.join(path, n))), None)
    if states_file is None:
        raise ValueError(f'{path}: none of {MODEL_STATES} found (the model states of rank 0)')
    model_states = torch.load(states_file, map_location='cpu', weights_only=False)
    parent, tag = osp.split(path)
    state_dict = get_fp32_state_dict_from_zero_checkpoint(parent, tag=tag,
                                                          exclude_frozen_parameters=exclude_frozen_parameters)
    state_dict = cast_floating(state_dict, dtype)
    meta = dict(model_states.get('meta', {}))
    meta.update(converted_from=path, deepspeed_version=model_states.get('ds_version'),
                zero_stage=model_states.get('ds_config', {}).get('zero_optimization', {}).get('stage'),
                dp_world_size=model_states.get('dp_world_size'))
    checkpoint = dict(meta=meta, state_dict=dict(state_dict))
    if 'message_hub' in model_states:
        checkpoint['message_hub'] = model_states['message_hub']
    return checkpoint


def load_from_deepspeed(filename: str, map_location=None) -> dict:
    """mmengine checkpoint loader of ``deepspeed://FOLDER`` (``map_location`` is ignored: CPU tensors)."""
    return load_deepspeed_checkpoint(filename[len(SCHEME):])


def register_deepspeed_checkpoint_scheme() -> None:
    """Register ``deepspeed://`` with mmengine's ``CheckpointLoader`` (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(SCHEME, load_from_deepspeed, force=True)
