from .rng_state_hook import RNGStateHook
from .sampler_state_hook import SamplerStateHook

__all__ = ['RNGStateHook', 'SamplerStateHook']
