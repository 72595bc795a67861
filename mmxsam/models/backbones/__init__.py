"""Backbones: the SAM segmentation encoder and the MLLM image encoder (SigLIP / CLIP)."""
from .hf_vision_encoder import HFVisionEncoder
from .sam_vit import SAMViTBackbone

__all__ = ['HFVisionEncoder', 'SAMViTBackbone']
