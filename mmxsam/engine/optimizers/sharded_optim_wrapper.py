"""Gradient-norm clipping for parameters sharded over processes (FSDP with ``use_orig_params=True``).

mmengine's ``OptimWrapper`` clips with ``torch.nn.utils.clip_grad_norm_``, which only sees this process's
gradient shards: under FSDP every rank would compute a different, too small norm. Here the squared shard
norms are summed over the process group (the shards of FULL_SHARD / SHARD_GRAD_OP are disjoint), so every
rank clips with the norm of the whole gradient, as ``FullyShardedDataParallel.clip_grad_norm_`` does.
"""
from typing import Iterable, Optional

import torch
import torch.distributed as torch_dist
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper


def sharded_clip_grad_norm_(params: Iterable[torch.Tensor], max_norm: float, norm_type: float = 2.0,
                            group: Optional[object] = None) -> torch.Tensor:
    """Clip gradient shards in place by the global norm over ``group``; returns that norm (0-d float32).

    Args:
        params: tensors whose ``.grad`` are this process's shards (disjoint across processes).
        max_norm: maximal global norm.
        norm_type: a p-norm (p >= 1) or ``inf``.
    """
    grads = [p.grad for p in params if p.grad is not None]
    norm_type = float(norm_type)
    if norm_type < 1:
        raise ValueError(f'norm_type must be >= 1 or inf, got {norm_type}')
    device = grads[0].device if grads else torch.device('cpu')
    if norm_type == float('inf'):
        local = max((g.detach().abs().max().float() for g in grads if g.numel()), default=torch.zeros((), device=device))
        local = torch.as_tensor(local, dtype=torch.float32, device=device)
        op = torch_dist.ReduceOp.MAX
    else:
        local = sum((g.detach().float().norm(norm_type) ** norm_type for g in grads if g.numel()),
                    torch.zeros((), device=device))
        op = torch_dist.ReduceOp.SUM
    total = local.clone()
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.all_reduce(total, op=op, group=group)
    if norm_type != float('inf'):
        total = total ** (1.0 / norm_type)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.detach().mul_(coef.to(g.device, g.dtype))
    return total


@OPTIM_WRAPPERS.register_module()
class ShardedOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``clip_grad=dict(max_norm=..., norm_type=...)`` uses the global norm of sharded
    gradients (:func:`sharded_clip_grad_norm_`). Use it with ``FSDPStrategy`` (``use_orig_params=True``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.clip_grad_kwargs and getattr(self, 'grad_name', None) == 'grad_norm':
            self.clip_func = sharded_clip_grad_norm_
