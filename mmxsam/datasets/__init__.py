from . import prompts, samplers, synthetic, transforms, utils, wrappers  # noqa: F401
from .xsam_base_dataset import XSAMBaseDataset

__all__ = ['XSAMBaseDataset', 'prompts', 'samplers', 'synthetic', 'transforms', 'utils', 'wrappers']
