from . import samplers, synthetic, transforms, utils, wrappers  # noqa: F401

__all__ = ['samplers', 'synthetic', 'transforms', 'utils', 'wrappers']
