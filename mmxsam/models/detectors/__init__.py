"""Detectors: the models that orchestrate backbone, neck and heads."""
from .xsam import XSAM
from .xsam_segmentor import XSAMSegmentor

__all__ = ['XSAM', 'XSAMSegmentor']
