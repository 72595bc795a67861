"""Base of every X-SAM task data set: records in one layout, conversations drawn per read.

A task data set reads its public annotation format in :meth:`load_data_list` and returns one *record* per
sample. :meth:`prepare_data` then builds the sample's conversation (questions and answers from the task's
prompt templates) and runs the pipeline. Training draws a template every time a sample is read, from numpy's
global generator, which mmengine seeds from the run's ``randomness.seed`` (and per dataloader worker), so
training is reproducible yet varies by iteration; evaluation always uses the first template, so results
are deterministic (the official code draws at random even at evaluation: its issue #37).

Record layout (the contract between data sets, transforms and the model):

* ``img_path`` (str or None for pure-text samples), ``img_id``, ``height``, ``width``
* ``task`` (str): ``imgconv``, ``genseg``, ``ovseg``, ``refseg``, ``reaseg``, ``gcgseg``, ``vgdseg`` or ``intseg``
* ``source`` (str): the data set's name (used by the same-source sampler and in logs)
* ``conversations``: LLaVA turns ``[{'from': 'human' | 'gpt', 'value': str}, ...]``; the first human turn
  starts with ``'<image>\\n'`` when there is an image; phrases are ``<p>..</p>``, visual prompts ``<region>``,
  segmentation outputs ``<SEG>``. Set by :meth:`build_conversation` unless the format carries it (LLaVA).
* ``phrases`` (list[str]): the condition texts, in the order the model pools them; instance labels index it
* ``instances``: ``[dict(mask=<COCO segmentation>, label=int, ignore_flag=0 | 1), ...]``
* ``vprompts``: one COCO segmentation per ``<region>``, in order (VGD / interactive)
* ``ignore_mask``: a COCO segmentation of pixels excluded from evaluation, or None (ReasonSeg)
"""
import inspect
from typing import Optional

import numpy as np
from mmdet.datasets.base_det_dataset import BaseDetDataset

PROMPT_MODES = ('random', 'fixed')


def _base_arguments() -> set:
    """Keyword arguments accepted by mmdet's ``BaseDetDataset`` and mmengine's ``BaseDataset``."""
    names = set()
    for klass in BaseDetDataset.__mro__:
        if '__init__' in klass.__dict__ and klass is not object:
            names |= {n for n, p in inspect.signature(klass.__init__).parameters.items()
                      if n != 'self' and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names


class XSAMBaseDataset(BaseDetDataset):
    """Args: ``prompt_mode`` (``'random'`` or ``'fixed'``; default ``'fixed'`` in ``test_mode``, else
    ``'random'``) and ``source_name`` (default: the class name); the rest as mmdet's ``BaseDetDataset``."""

    TASK: Optional[str] = None

    def __init__(self, *args, prompt_mode: Optional[str] = None, source_name: Optional[str] = None, **kwargs) -> None:
        test_mode = kwargs.get('test_mode', False)
        prompt_mode = prompt_mode or ('fixed' if test_mode else 'random')
        if prompt_mode not in PROMPT_MODES:
            raise ValueError(f'prompt_mode must be one of {PROMPT_MODES}, got {prompt_mode!r}')
        if self.TASK is None:
            raise TypeError(f'{type(self).__name__} must set the class attribute TASK')
        self.prompt_mode = prompt_mode
        self.source_name = source_name or type(self).__name__
        unknown = sorted(set(kwargs) - _base_arguments())
        if unknown:  # BaseDataset would say "BaseDataset.__init__() got an unexpected keyword argument"
            raise TypeError(f'{type(self).__name__} (source {self.source_name!r}): unknown argument(s) {unknown}: '
                            f'neither its own nor one of mmdet BaseDetDataset {sorted(_base_arguments())}')
        super().__init__(*args, **kwargs)

    def build_conversation(self, info: dict, rng) -> dict:
        """Fill ``info['conversations']`` (and anything the prompts decide, e.g. sampled ``phrases``).

        ``rng`` is numpy's global generator in ``'random'`` mode and None in ``'fixed'`` mode (take the
        first template). Data sets whose format carries the conversation (LLaVA) keep it."""
        if 'conversations' not in info:
            raise NotImplementedError(f'{type(self).__name__} must build conversations for task {self.TASK}')
        return info

    def prepare_data(self, idx: int):
        info = self.get_data_info(idx)
        info.setdefault('task', self.TASK)
        info.setdefault('source', self.source_name)
        info = self.build_conversation(info, np.random if self.prompt_mode == 'random' else None)
        return self.pipeline(info)
