from .last_checkpoint import register_last_checkpoint_scheme, resolve_last_checkpoint
from .safe_load import mmengine_safe_globals, register_safe_globals, unsafe_globals_in

__all__ = ['mmengine_safe_globals', 'register_last_checkpoint_scheme', 'register_safe_globals',
           'resolve_last_checkpoint', 'unsafe_globals_in']
