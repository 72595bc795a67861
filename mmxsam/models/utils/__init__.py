"""Small building blocks shared by mmxsam models."""
from .layer_norm import LayerNorm2d
from .pixel_shuffle import pad_to_multiple, pixel_shuffle, pixel_shuffle_tokens

__all__ = ['LayerNorm2d', 'pad_to_multiple', 'pixel_shuffle', 'pixel_shuffle_tokens']
