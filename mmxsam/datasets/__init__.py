from . import samplers, synthetic, transforms, utils, wrappers  # noqa: F401
from .xsam_base_dataset import XSAMBaseDataset

__all__ = ['XSAMBaseDataset', 'samplers', 'synthetic', 'transforms', 'utils', 'wrappers']
