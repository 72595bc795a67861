from .global_batch_check_hook import GlobalBatchCheckHook
from .rng_state_hook import RNGStateHook
from .sampler_state_hook import SamplerStateHook

__all__ = ['GlobalBatchCheckHook', 'RNGStateHook', 'SamplerStateHook']
