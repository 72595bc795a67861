"""Segmentation post-processing heads (panoptic / instance / semantic fusion)."""
from .xsam_fusion_head import XSAMFusionHead

__all__ = ['XSAMFusionHead']
