from . import prompts, samplers, synthetic, transforms, utils, wrappers  # noqa: F401
from .gcg_seg_dataset import XSAMGCGSegDataset
from .generic_seg_dataset import XSAMGenericSegDataset, XSAMOVSegDataset
from .image_conv_dataset import XSAMImageConvDataset
from .reason_seg_dataset import XSAMReasonSegDataset
from .refer_seg_dataset import XSAMReferSegDataset
from .vgd_seg_dataset import XSAMInteractiveSegDataset, XSAMVGDSegDataset
from .xsam_base_dataset import XSAMBaseDataset

__all__ = [
    'XSAMBaseDataset', 'XSAMGCGSegDataset', 'XSAMGenericSegDataset', 'XSAMImageConvDataset', 'XSAMOVSegDataset',
    'XSAMReasonSegDataset', 'XSAMReferSegDataset', 'XSAMVGDSegDataset', 'XSAMInteractiveSegDataset', 'prompts',
    'samplers', 'synthetic', 'transforms', 'utils', 'wrappers'
]
