"""Image conversation (LLaVA): chats used as written, with ``<image>`` moved to the front.

Reads the LLaVA JSON layout, a list of ``{'id', 'image'?, 'conversations': [{'from', 'value'}, ...]}``:
LLaVA-665K instruction data (stage 3) and LLaVA-558K captions (stage 2) alike. What happens to a sample:

* Leading ``gpt`` turns are dropped (as the official ``image_conv_map_fn``); the rest must alternate
  ``human``/``gpt``, starting with ``human`` and ending with ``gpt``, every value a string.
* With an image: every ``<image>`` is taken out of the human turns and one is put at the front of the first
  human turn, ``'<image>\\n' + rest.strip()`` (LLaVA-558K writes ``'...\\n<image>'``; the official code moves
  it within the turn that holds it; here it always goes to the first turn, as the record contract says).
* Without an image (pure text): kept, with ``img_path=None`` (the official archive silently feeds these
  zero images; its ``exclude_pure_text`` is ignored). Such a sample must not contain ``<image>``.
* Answers (``gpt`` turns) must not contain ``<image>``/``<region>`` (a placeholder cannot be a target).

A sample breaking these rules raises a ``ValueError`` naming its id, or, with ``skip_invalid=True``, is
dropped and counted in :attr:`XSAMImageConvDataset.skip_counts` (logged once when loading).
"""
import os.path as osp
from collections import Counter
from typing import Dict, List

from mmengine.fileio import load
from mmengine.logging import print_log
from mmdet.registry import DATASETS

from mmxsam.models.language.constants import IMAGE_TOKEN, REGION_TOKEN

from .prompts import with_image
from .utils.annotation_io import load_json
from .xsam_base_dataset import XSAMBaseDataset

_ROLES = ('human', 'gpt')


class _InvalidSample(ValueError):
    """A sample that breaks the format; ``reason`` is its skip-counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@DATASETS.register_module()
class XSAMImageConvDataset(XSAMBaseDataset):
    """LLaVA-style image conversations (task ``imgconv``).

    Args:
        skip_invalid (bool): drop (and count) samples that break the format instead of raising.
            Defaults to False.
        *args, **kwargs: as :class:`~mmxsam.datasets.XSAMBaseDataset` (``ann_file``, ``data_root``,
            ``data_prefix=dict(img_path=...)``, ``pipeline``, ``test_mode``, ...).

    Records: ``img_path`` (None for pure text), ``img_id`` (the sample's ``id``; its index if it has none),
    ``height``/``width`` None (LLaVA gives no sizes; image loading sets the shapes), ``conversations``,
    ``instances=[]``, ``phrases=[]``.

    Attributes:
        skip_counts (Counter): samples dropped by reason (``skip_invalid=True`` only):
            ``bad_structure``, ``bad_roles``, ``no_turns``, ``image_token_without_image``,
            ``placeholder_in_answer``.
        stats (Counter): ``samples``, ``pure_text`` (kept with ``img_path=None``), ``leading_gpt_dropped``
            (samples that lost leading gpt turns), ``image_token_moved`` (samples whose ``<image>`` was
            not already at the front of the first turn).
    """

    TASK = 'imgconv'

    def __init__(self, *args, skip_invalid: bool = False, **kwargs) -> None:
        self.skip_invalid = skip_invalid
        self.skip_counts: Counter = Counter()
        self.stats: Counter = Counter()
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------------------------------- loading
    def load_data_list(self) -> List[dict]:
        samples = (load_json(self.ann_file, self.backend_args) if self.ann_file.endswith('.json')
                   else load(self.ann_file, backend_args=self.backend_args))
        if not isinstance(samples, list):
            raise TypeError(f'{self.ann_file}: a LLaVA annotation file holds a list of samples, '
                            f'got {type(samples).__name__}')
        self.skip_counts, self.stats = Counter(), Counter()
        data_list = []
        for index, sample in enumerate(samples):
            try:
                record = self.parse_sample(sample, index)
            except _InvalidSample as e:
                if not self.skip_invalid:
                    raise ValueError(f'{self.ann_file}: {e} (pass skip_invalid=True to drop such samples)') from None
                self.skip_counts[e.reason] += 1
                continue
            data_list.append(record)
        self.stats['samples'] = len(data_list)
        skipped = sum(self.skip_counts.values())
        print_log(f'{self.source_name} ({self.TASK}): {len(data_list)} samples from {self.ann_file}; '
                  f'{self.stats["pure_text"]} pure-text (kept, img_path=None); '
                  f'{self.stats["leading_gpt_dropped"]} lost leading gpt turns; '
                  f'{skipped} invalid skipped {dict(self.skip_counts)}', logger='current')
        return data_list

    def parse_sample(self, sample: dict, index: int) -> Dict:
        """One LLaVA sample -> one record. Raises :class:`_InvalidSample` (a ``ValueError``)."""
        if not isinstance(sample, dict) or not isinstance(sample.get('conversations'), list):
            raise _InvalidSample('bad_structure', f'sample #{index} is not a dict with a "conversations" list')
        sid = sample.get('id', index)
        turns = sample['conversations']
        if not all(isinstance(t, dict) and isinstance(t.get('value'), str) for t in turns):
            raise _InvalidSample('bad_structure', f'sample id={sid!r}: every turn must be a dict with a str "value"')
        roles = [t.get('from') for t in turns]
        start = 0
        while start < len(roles) and roles[start] == 'gpt':  # as the official map fn
            start += 1
        if start:
            self.stats['leading_gpt_dropped'] += 1
        turns, roles = turns[start:], roles[start:]
        if not turns:
            raise _InvalidSample('no_turns', f'sample id={sid!r} has no human turn')
        expected = [_ROLES[k % 2] for k in range(len(roles))]
        if roles != expected or roles[-1] != 'gpt':
            raise _InvalidSample('bad_roles', f'sample id={sid!r}: turns must alternate human/gpt, starting with '
                                 f'human and ending with gpt; got {roles}')
        values = [t['value'] for t in turns]
        for k in range(1, len(values), 2):
            if IMAGE_TOKEN in values[k] or REGION_TOKEN in values[k]:
                raise _InvalidSample('placeholder_in_answer', f'sample id={sid!r}: answer {k // 2} contains '
                                     f'{IMAGE_TOKEN} or {REGION_TOKEN}')
        image = sample.get('image')
        if image:
            if not isinstance(image, str):
                raise _InvalidSample('bad_structure', f'sample id={sid!r}: "image" must be a file name, '
                                     f'got {type(image).__name__}')
            first = with_image(values[0])
            if first != values[0] or any(IMAGE_TOKEN in values[k] for k in range(2, len(values), 2)):
                self.stats['image_token_moved'] += 1
            values = [first] + [v.replace(IMAGE_TOKEN, '').strip() if k % 2 == 0 and IMAGE_TOKEN in v else v
                                for k, v in enumerate(values[1:], 1)]
            img_path = osp.join(self.data_prefix.get('img_path', ''), image)
        else:
            if any(IMAGE_TOKEN in v for v in values):
                raise _InvalidSample('image_token_without_image',
                                     f'sample id={sid!r} has no image but its text contains {IMAGE_TOKEN}')
            self.stats['pure_text'] += 1
            img_path = None
        conversations = [{'from': r, 'value': v} for r, v in zip(roles, values)]
        return dict(img_path=img_path, img_id=sid, height=None, width=None, conversations=conversations,
                    instances=[], phrases=[])

    # ------------------------------------------------------------------------------------ conversation
    def build_conversation(self, info: dict, rng) -> dict:
        """The turns come with the data: kept as they are (no templates, ``rng`` unused)."""
        return info
