"""mmxsam models. Importing this package registers its modules into mmdet's ``MODELS``."""
from . import backbones, detectors, heads, layers, necks, projectors, seg_heads, utils  # noqa: F401  (registration)
from .language import build_tiny_tokenizer, iter_json_strings

__all__ = ['build_tiny_tokenizer', 'iter_json_strings']
