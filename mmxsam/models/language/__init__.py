"""Language-model side of mmxsam: tokenizers (and, later, the LLM wrapper)."""
from .tiny_tokenizer import EXTRA_CORPUS, build_tiny_tokenizer, iter_json_strings

__all__ = ['EXTRA_CORPUS', 'build_tiny_tokenizer', 'iter_json_strings']
