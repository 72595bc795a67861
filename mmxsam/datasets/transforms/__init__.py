from .center_crop import CenterCropDet
from .load_xsam_annotations import LoadXSAMAnnotations
from .pack_xsam_inputs import PackXSAMInputs, conversation_pairs
from .xsam_resize import XSAMResize

__all__ = ['CenterCropDet', 'LoadXSAMAnnotations', 'PackXSAMInputs', 'XSAMResize', 'conversation_pairs']
