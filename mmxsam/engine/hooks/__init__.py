from .sampler_state_hook import SamplerStateHook

__all__ = ['SamplerStateHook']
