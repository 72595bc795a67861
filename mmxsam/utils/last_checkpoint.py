"""``last://WORK_DIR``: the newest checkpoint of a training run, as a checkpoint path anywhere mmengine
loads one (``load_from``, ``init_cfg=dict(type='Pretrained', checkpoint=...)``, ``load_checkpoint``).

mmengine's ``CheckpointHook`` writes the path of the newest checkpoint to ``WORK_DIR/last_checkpoint``.
Stage hand-off configs point at the previous stage's *run* instead of one file name, so they stay valid
whatever the iteration count of that run::

    stage1_checkpoint = 'last://work_dirs/tiny_seg_finetune'
    model = dict(init_cfg=[dict(type='Pretrained', checkpoint=stage1_checkpoint)])

When the newest checkpoint is a DeepSpeed folder (``FlexibleRunner`` + ``DeepSpeedStrategy`` with optimizer
states), it is merged into one fp32 state dict on the fly (:mod:`mmxsam.utils.deepspeed_checkpoint`).
"""
import os.path as osp

from mmengine.runner.checkpoint import CheckpointLoader, load_from_local

from .deepspeed_checkpoint import is_deepspeed_checkpoint, load_deepspeed_checkpoint

SCHEME = 'last://'


def resolve_last_checkpoint(path: str) -> str:
    """``'last://WORK_DIR'`` -> the file (or DeepSpeed folder) named in ``WORK_DIR/last_checkpoint``; other
    paths unchanged.

    Raises:
        FileNotFoundError: no ``last_checkpoint`` record in the work dir, or the file it names is gone;
            the message names the work dir.
    """
    if not path.startswith(SCHEME):
        return path
    work_dir = path[len(SCHEME):]
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        raise FileNotFoundError(f'{path}: {record} does not exist; train that stage first (its work dir must be '
                                f'{work_dir!r}) or give the checkpoint file explicitly')
    with open(record) as f:
        checkpoint = f.read().strip()
    moved = osp.join(work_dir, osp.basename(osp.normpath(checkpoint)))
    usable = lambda p: osp.isfile(p) or is_deepspeed_checkpoint(p)  # noqa: E731
    if not usable(checkpoint) and usable(moved):  # the work dir was moved or copied
        checkpoint = moved
    if not usable(checkpoint):
        raise FileNotFoundError(f'{path}: {record} names {checkpoint!r}, which does not exist')
    return checkpoint


def load_from_last(filename: str, map_location=None):
    """mmengine checkpoint loader of the ``last://`` scheme."""
    path = resolve_last_checkpoint(filename)
    if is_deepspeed_checkpoint(path):
        return load_deepspeed_checkpoint(path)
    return load_from_local(path, map_location=map_location)


def register_last_checkpoint_scheme() -> None:
    """Register ``last://`` with mmengine's ``CheckpointLoader`` (idempotent)."""
    CheckpointLoader.register_scheme(SCHEME, load_from_last, force=True)
