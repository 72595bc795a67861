from .safe_load import mmengine_safe_globals, register_safe_globals, unsafe_globals_in

__all__ = ['mmengine_safe_globals', 'register_safe_globals', 'unsafe_globals_in']
