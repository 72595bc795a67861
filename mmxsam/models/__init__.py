"""mmxsam models. Importing this package registers its modules into mmdet's ``MODELS``."""
from . import backbones, data_preprocessors, detectors, heads, layers, necks, projectors, seg_heads, utils  # noqa: F401
from .language import build_tiny_tokenizer, iter_json_strings

__all__ = ['build_tiny_tokenizer', 'iter_json_strings']
