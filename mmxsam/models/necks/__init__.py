"""Necks: SAM maps -> multi-scale maps for the segmentation decoder."""
from .base_connector import BaseXSAMConnector
from .mlp_connector import XSAMMLPConnector
from .seg_connector import XSAMSegConnector
from .single_scale_connector import XSAMSingleScaleConnector

__all__ = [
    'BaseXSAMConnector', 'XSAMSegConnector', 'XSAMMLPConnector', 'XSAMSingleScaleConnector'
]
