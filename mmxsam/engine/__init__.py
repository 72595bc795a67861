from .hooks import SamplerStateHook
from .runner import ResumableIterBasedTrainLoop

__all__ = ['ResumableIterBasedTrainLoop', 'SamplerStateHook']
