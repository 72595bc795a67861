from . import prompts, samplers, synthetic, transforms, utils, wrappers  # noqa: F401
from .generic_seg_dataset import XSAMGenericSegDataset, XSAMOVSegDataset
from .xsam_base_dataset import XSAMBaseDataset

__all__ = [
    'XSAMBaseDataset', 'XSAMGenericSegDataset', 'XSAMOVSegDataset', 'prompts', 'samplers', 'synthetic',
    'transforms', 'utils', 'wrappers'
]
