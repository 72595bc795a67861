"""Pack a task record into the model's inputs: image, targets and the tokenised conversation.

On top of mmdet's :class:`PackDetInputs` (image -> ``inputs``; ``gt_masks``/``gt_bboxes``/labels ->
``data_sample.gt_instances``), this transform

* tokenises ``conversations`` with the chat template (:func:`mmxsam.models.language.encode_conversation`):
  ``data_sample.input_ids`` and ``data_sample.lm_labels`` (LongTensor (L,); ``<image>`` is -200,
  ``<region>`` -300, unsupervised positions -100). A last human turn without an answer becomes a
  generation prompt (evaluation of GCG/chat);
* packs ``gt_vprompt_masks`` as ``data_sample.gt_vprompts`` (InstanceData with ``masks``) and
  ``gt_ignore_mask`` as ``data_sample.gt_ignore_mask`` (PixelData, ``(1, H, W)`` uint8);
* adds ``task``, ``source``, ``phrases``, ``has_image`` and ``num_truncated`` to the metainfo;
* gives a pure-text sample (no ``img``) a ``(3, blank_size, blank_size)`` black image with
  ``has_image=False`` so batches stay uniform; the model must not insert visual tokens for it.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS
from mmengine.structures import InstanceData, PixelData

from ...models.language.conversation import build_tokenizer, encode_conversation

XSAM_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction',
                  'task', 'source', 'phrases', 'has_image', 'num_truncated', 'sample_idx', 'split', 'category_ids',
                  'vprompt_types', 'conversations',  # VGDMetric's prompt type, ChatMetric's Q/A
                  'prompt_only')  # a sample that only lends its visual prompts to the batch (cross-image)


def conversation_pairs(conversations: Sequence[dict], where: str = 'sample') -> List[Tuple[str, Optional[str]]]:
    """LLaVA turns -> ``[(human, gpt or None), ...]``; a trailing human turn becomes ``(human, None)``."""
    pairs: List[Tuple[str, Optional[str]]] = []
    expect = 'human'
    for k, turn in enumerate(conversations):
        role = turn.get('from')
        if role != expect:
            raise ValueError(f'{where}: turn {k} is from {role!r}, expected {expect!r} (turns alternate human/gpt)')
        if role == 'human':
            pairs.append((turn['value'], None))
            expect = 'gpt'
        else:
            pairs[-1] = (pairs[-1][0], turn['value'])
            expect = 'human'
    if not pairs:
        raise ValueError(f'{where}: empty conversation')
    return pairs


@TRANSFORMS.register_module()
class PackXSAMInputs(PackDetInputs):
    """Args:
        tokenizer (dict | str | tokenizer): built with :func:`build_tokenizer` (X-SAM's tokens added), e.g.
            ``dict(name_or_path='data/shapes/tokenizer')``. Build the model's LLM with the same tokenizer.
        chat_template (str | dict): the chat template (``'phi3'`` for X-SAM).
        max_length (int, optional): token budget of the text (visual placeholders count one each).
        blank_size (int): side of the black image given to pure-text samples.
        meta_keys (tuple[str]): metainfo keys to keep.
    """

    def __init__(self, tokenizer: Union[dict, str, object], chat_template: Union[str, dict] = 'phi3',
                 max_length: Optional[int] = None, blank_size: int = 32,
                 meta_keys: Sequence[str] = XSAM_META_KEYS) -> None:
        super().__init__(meta_keys=tuple(meta_keys))
        if isinstance(tokenizer, str):
            tokenizer = dict(name_or_path=tokenizer)
        self.tokenizer = build_tokenizer(tokenizer)
        self.chat_template = chat_template
        self.max_length = max_length
        self.blank_size = blank_size

    def transform(self, results: dict) -> dict:
        where = f"{results.get('img_path') or 'text sample'} (img_id={results.get('img_id')})"
        has_image = 'img' in results
        if not has_image:
            results['img'] = np.zeros((self.blank_size, self.blank_size, 3), np.uint8)
            results.setdefault('img_shape', (self.blank_size, self.blank_size))
            results.setdefault('ori_shape', (self.blank_size, self.blank_size))
        results['has_image'] = has_image
        if 'conversations' not in results:
            raise KeyError(f'{where}: PackXSAMInputs needs `conversations` (built by the XSAM data sets); '
                           f'the sample has {sorted(results)}')
        try:
            encoded = encode_conversation(self.tokenizer, self.chat_template,
                                          conversation_pairs(results['conversations'], where), self.max_length)
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith(where) else f'{where}: {msg}') from None
        results['num_truncated'] = encoded['num_truncated']
        results.setdefault('phrases', [])
        packed = super().transform(results)
        sample = packed['data_samples']
        sample.input_ids = torch.tensor(encoded['input_ids'], dtype=torch.long)
        sample.lm_labels = torch.tensor(encoded['labels'], dtype=torch.long)
        if results.get('gt_vprompt_masks') is not None:
            sample.gt_vprompts = InstanceData(masks=results['gt_vprompt_masks'])
        if results.get('gt_ignore_mask') is not None:
            sample.gt_ignore_mask = PixelData(sem_seg=torch.from_numpy(results['gt_ignore_mask'].masks.copy()))
        return packed

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(chat_template={self.chat_template!r}, max_length={self.max_length}, '
                f'blank_size={self.blank_size})')
