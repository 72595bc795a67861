"""Backbones: the SAM segmentation encoder."""
from .sam_vit import SAMViTBackbone

__all__ = ['SAMViTBackbone']
