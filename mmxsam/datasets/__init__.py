from . import prompts, samplers, synthetic, transforms, utils, wrappers  # noqa: F401
from .generic_seg_dataset import XSAMGenericSegDataset, XSAMOVSegDataset
from .reason_seg_dataset import XSAMReasonSegDataset
from .refer_seg_dataset import XSAMReferSegDataset
from .xsam_base_dataset import XSAMBaseDataset

__all__ = [
    'XSAMBaseDataset', 'XSAMGenericSegDataset', 'XSAMOVSegDataset', 'XSAMReasonSegDataset',
    'XSAMReferSegDataset', 'prompts', 'samplers', 'synthetic', 'transforms', 'utils', 'wrappers'
]
