"""mmxsam models. Importing this package registers its modules into mmdet's ``MODELS``."""
from .language import build_tiny_tokenizer, iter_json_strings
from . import necks, utils  # noqa: F401  (registers the connectors)

__all__ = ['build_tiny_tokenizer', 'iter_json_strings']
