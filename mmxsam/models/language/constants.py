"""Token strings and placeholder ids shared by the data pipeline and the LLM wrapper.

Two kinds of X-SAM tokens:

* **Vocabulary tokens** (:data:`XSAM_SPECIAL_TOKENS`): ``<SEG>``, ``<p>``, ``</p>``. They are added to
  the tokenizer as special (never split) tokens and get embedding rows (X-SAM's official code:
  ``tokenizer.add_tokens([...], special_tokens=True)`` then ``resize_token_embeddings``).
* **Placeholders**: ``<image>`` and ``<region>`` are *not* vocabulary tokens. The conversation
  encoder turns each into a negative id (:data:`IMAGE_TOKEN_INDEX`, :data:`REGION_TOKEN_INDEX`)
  without ever passing the string to the tokenizer; the MLLM later replaces those positions with
  visual tokens (the image) or one sampled region feature (a region).
"""

#: Label value ignored by ``torch.nn.CrossEntropyLoss`` (and HF's causal-LM loss).
IGNORE_INDEX = -100

IMAGE_TOKEN = '<image>'
REGION_TOKEN = '<region>'
#: Placeholder id of ``<image>`` in ``input_ids`` (LLaVA / xtuner convention).
IMAGE_TOKEN_INDEX = -200
#: Placeholder id of ``<region>`` in ``input_ids`` (X-SAM convention).
REGION_TOKEN_INDEX = -300
#: Placeholder string -> placeholder id.
PLACEHOLDER_INDEX = {IMAGE_TOKEN: IMAGE_TOKEN_INDEX, REGION_TOKEN: REGION_TOKEN_INDEX}

SEG_TOKEN = '<SEG>'
PHRASE_START_TOKEN = '<p>'
PHRASE_END_TOKEN = '</p>'
#: Added to the tokenizer in this order, so with Phi-3-mini's tokenizer (32011 tokens) they get the
#: ids 32011, 32012, 32013.
XSAM_SPECIAL_TOKENS = (SEG_TOKEN, PHRASE_START_TOKEN, PHRASE_END_TOKEN)
