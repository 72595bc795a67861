from .deepspeed_checkpoint import is_deepspeed_checkpoint, load_deepspeed_checkpoint
from .last_checkpoint import register_last_checkpoint_scheme, resolve_last_checkpoint
from .official_checkpoint import mmxsam_to_official, official_to_mmxsam
from .safe_load import mmengine_safe_globals, register_safe_globals, unsafe_globals_in

__all__ = ['is_deepspeed_checkpoint', 'load_deepspeed_checkpoint', 'mmengine_safe_globals', 'mmxsam_to_official', 'official_to_mmxsam', 'register_last_checkpoint_scheme',
           'register_safe_globals', 'resolve_last_checkpoint', 'unsafe_globals_in']
