"""Dual projectors (MLP; pixel shuffle + MLP) and the region sampler of the MLLM branch."""
from .mlp_projector import XSAMMLPProjector
from .pixel_shuffle_projector import XSAMPixelShuffleProjector
from .region_sampler import XSAMRegionSampler, sample_points

__all__ = ['XSAMMLPProjector', 'XSAMPixelShuffleProjector', 'XSAMRegionSampler', 'sample_points']
