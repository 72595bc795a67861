from . import synthetic, utils  # noqa: F401

__all__ = ['synthetic', 'utils']
