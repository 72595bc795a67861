from .hooks import GlobalBatchCheckHook, RNGStateHook, SamplerStateHook
from .optimizers import ShardedOptimWrapper
from .runner import ResumableIterBasedTrainLoop

__all__ = ['GlobalBatchCheckHook', 'RNGStateHook', 'ResumableIterBasedTrainLoop', 'SamplerStateHook', 'ShardedOptimWrapper']
