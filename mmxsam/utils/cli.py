"""Config handling shared by ``tools/train.py`` and ``tools/test.py`` (mmdet's CLI conventions)."""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log


def load_cli_config(config: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                    launcher: str = 'none') -> Config:
    """Read ``config``, merge ``--cfg-options`` and resolve ``work_dir`` (CLI > config > ./work_dirs/<name>)."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    adapt_dist_backend(cfg)
    return cfg


def adapt_dist_backend(cfg: Config) -> None:
    """Make ``--launcher pytorch`` work on machines without CUDA (multi-process CPU runs, e.g. CI).

    mmengine 0.10.7 assumes CUDA in three places; on a CPU-only torch each one fails:

    * ``env_cfg.dist_cfg.backend`` defaults to ``nccl``  -> switched to ``gloo`` (logged);
    * ``init_dist`` calls ``torch.cuda.set_device``       -> :func:`init_cpu_process_group` creates the
      gloo process group before the runner is built (runners skip ``init_dist`` when one exists);
    * DDP gets ``device_ids=[LOCAL_RANK]``                 -> ``model_wrapper_cfg.device_ids=None``.

    Nothing changes when CUDA is available or when the job is not distributed. Slurm/MPI launches
    without CUDA are refused with a clear message.
    """
    launcher = cfg.get('launcher', 'none')
    if torch.cuda.is_available() or launcher == 'none':
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} needs CUDA devices; for multi-process CPU runs use '
                           '--launcher pytorch (tools/dist_train.sh / tools/dist_test.sh)')
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict(backend='nccl'))
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        print_log('no CUDA device: distributed backend nccl -> gloo', logger='current')

    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        cfg.model_wrapper_cfg = ConfigDict(type='MMDistributedDataParallel', device_ids=None,
                                           broadcast_buffers=False,
                                           find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif 'DistributedDataParallel' in str(wrapper.get('type', 'MMDistributedDataParallel')):
        wrapper.setdefault('device_ids', None)


def init_cpu_process_group(cfg: Config) -> None:
    """Create the process group for a ``--launcher pytorch`` job on a machine without CUDA."""
    import torch.distributed as torch_dist
    if torch.cuda.is_available() or cfg.get('launcher', 'none') != 'pytorch' or torch_dist.is_initialized():
        return
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'gloo')
    if isinstance(dist_cfg.get('timeout'), (int, float)):  # seconds, as mmengine's init_dist accepts
        import datetime
        dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    torch_dist.init_process_group(backend=backend, **dist_cfg)


def enable_amp(cfg: Config) -> None:
    """``--amp``: mixed precision the way the config's runner expects it.

    * ``Runner``: ``AmpOptimWrapper`` with a dynamic loss scale (needs a CUDA-like device; on the CPU
      this raises instead of failing later inside mmengine).
    * ``FlexibleRunner`` with a DeepSpeed strategy: bf16 in the strategy.
    """
    strategy = cfg.get('strategy', None)
    if cfg.get('runner_type', None) == 'FlexibleRunner' and isinstance(strategy, (dict, ConfigDict)) \
            and 'DeepSpeed' in str(strategy.get('type', '')):
        strategy['bf16'] = dict(enabled=True)
        strategy.pop('fp16', None)
        return
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a CUDA device (mmengine AmpOptimWrapper); this machine has none. '
                           'Train in fp32 on the CPU, or use a DeepSpeed config with bf16.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def enable_auto_scale_lr(cfg: Config) -> None:
    """``--auto-scale-lr``: requires ``auto_scale_lr = dict(enable=..., base_batch_size=...)`` in the config."""
    scale = cfg.get('auto_scale_lr', None)
    if not scale or 'base_batch_size' not in scale:
        raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = dict(enable=False, base_batch_size=N)` '
                           'in the config')
    cfg.auto_scale_lr.enable = True


def apply_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume``: ``auto`` resumes from the latest checkpoint in ``work_dir``; a path resumes from it."""
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        if not osp.exists(resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
        cfg.resume = True
        cfg.load_from = resume


def build_runner(cfg: Config):
    """``Runner.from_cfg`` or, when the config sets ``runner_type`` (e.g. ``FlexibleRunner``), the registry.

    CPU multi-process jobs get their gloo process group here, and DeepSpeed strategies on gloo wait on every
    parameter all-gather (``deepspeed_gloo.wait_for_every_gather``).
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    init_cpu_process_group(cfg)
    strategy = cfg.get('strategy', None)
    if not torch.cuda.is_available() and cfg.get('launcher', 'none') == 'pytorch' \
            and isinstance(strategy, (dict, ConfigDict)) and 'DeepSpeed' in str(strategy.get('type', '')):
        from .deepspeed_gloo import wait_for_every_gather
        wait_for_every_gather()
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)
