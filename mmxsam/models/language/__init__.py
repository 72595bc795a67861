"""Language-model side of mmxsam: tokenizers, chat templates, conversation encoding, the LLM wrapper."""
from .chat_template import (ChatTemplate, get_chat_template, list_chat_templates,
                            register_chat_template)
from .constants import (IGNORE_INDEX, IMAGE_TOKEN, IMAGE_TOKEN_INDEX, PHRASE_END_TOKEN,
                        PHRASE_START_TOKEN, REGION_TOKEN, REGION_TOKEN_INDEX, SEG_TOKEN,
                        XSAM_SPECIAL_TOKENS)
from .conversation import add_xsam_tokens, build_tokenizer, encode_conversation
from .hf_causal_lm import HFCausalLM
from .tiny_tokenizer import EXTRA_CORPUS, build_tiny_tokenizer, iter_json_strings

__all__ = [
    'EXTRA_CORPUS', 'build_tiny_tokenizer', 'iter_json_strings', 'ChatTemplate', 'get_chat_template',
    'list_chat_templates', 'register_chat_template', 'IGNORE_INDEX', 'IMAGE_TOKEN', 'IMAGE_TOKEN_INDEX',
    'PHRASE_END_TOKEN', 'PHRASE_START_TOKEN', 'REGION_TOKEN', 'REGION_TOKEN_INDEX', 'SEG_TOKEN',
    'XSAM_SPECIAL_TOKENS', 'add_xsam_tokens', 'build_tokenizer', 'encode_conversation', 'HFCausalLM'
]
