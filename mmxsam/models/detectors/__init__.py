"""Detectors: the models that orchestrate backbone, neck and heads."""
from .xsam_segmentor import XSAMSegmentor

__all__ = ['XSAMSegmentor']
