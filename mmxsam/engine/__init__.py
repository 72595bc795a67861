from .hooks import RNGStateHook, SamplerStateHook
from .runner import ResumableIterBasedTrainLoop

__all__ = ['RNGStateHook', 'ResumableIterBasedTrainLoop', 'SamplerStateHook']
