from .center_crop import CenterCropDet
from .load_panoptic_segments import LoadPanopticSegments
from .load_xsam_annotations import LoadXSAMAnnotations
from .pack_xsam_inputs import PackXSAMInputs, conversation_pairs
from .xsam_resize import XSAMResize

__all__ = [
    'CenterCropDet', 'LoadPanopticSegments', 'LoadXSAMAnnotations', 'PackXSAMInputs', 'XSAMResize',
    'conversation_pairs'
]
