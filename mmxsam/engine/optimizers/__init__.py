from .sharded_optim_wrapper import ShardedOptimWrapper, sharded_clip_grad_norm_

__all__ = ['ShardedOptimWrapper', 'sharded_clip_grad_norm_']
