"""mmxsam models. Importing this package registers its modules into mmdet's ``MODELS``."""
from . import seg_heads  # noqa
from . import detectors  # noqa
from . import backbones  # noqa
from .language import build_tiny_tokenizer, iter_json_strings
from . import heads, layers, necks, utils  # noqa: F401  (registration)

__all__ = ['build_tiny_tokenizer', 'iter_json_strings']
