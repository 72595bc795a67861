"""Small building blocks shared by mmxsam models."""
from .condition_pooling import (build_conditions, contrastive_conditions, gather_seg_embeds, phrase_spans,
                                pool_phrases, seg_positions)
from .layer_norm import LayerNorm2d
from .pixel_shuffle import pad_to_multiple, pixel_shuffle, pixel_shuffle_tokens

__all__ = [
    'LayerNorm2d', 'build_conditions', 'contrastive_conditions', 'gather_seg_embeds', 'pad_to_multiple',
    'phrase_spans', 'pixel_shuffle', 'pixel_shuffle_tokens', 'pool_phrases', 'seg_positions'
]
