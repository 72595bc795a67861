from . import synthetic, transforms, utils  # noqa: F401

__all__ = ['synthetic', 'transforms', 'utils']
