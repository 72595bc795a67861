from .xsam_mask2former_head import XSAMMask2FormerHead

__all__ = ['XSAMMask2FormerHead']
