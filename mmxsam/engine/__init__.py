from .hooks import GlobalBatchCheckHook, RNGStateHook, SamplerStateHook
from .runner import ResumableIterBasedTrainLoop

__all__ = ['GlobalBatchCheckHook', 'RNGStateHook', 'ResumableIterBasedTrainLoop', 'SamplerStateHook']
