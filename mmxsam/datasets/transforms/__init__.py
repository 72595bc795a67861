from .binary_seg_target import BinarySegTarget
from .center_crop import CenterCropDet
from .if_has_image import IfHasImage
from .load_panoptic_segments import LoadPanopticSegments
from .load_xsam_annotations import LoadXSAMAnnotations
from .pack_xsam_inputs import PackXSAMInputs, conversation_pairs
from .semantic_seg_target import SemanticSegTarget
from .xsam_resize import XSAMResize

__all__ = [
    'BinarySegTarget', 'CenterCropDet', 'IfHasImage', 'LoadPanopticSegments', 'LoadXSAMAnnotations', 'PackXSAMInputs',
    'SemanticSegTarget', 'XSAMResize', 'conversation_pairs'
]
