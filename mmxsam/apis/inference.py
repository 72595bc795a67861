"""Run a trained X-SAM model on one image and a task prompt (Python API).

    from mmxsam.apis import init_xsam, inference_xsam
    model = init_xsam('configs/xsam/tiny_mixed.py', 'work_dirs/tiny_mixed/iter_1500.pth')
    result = inference_xsam(model, 'data/shapes/images/shapes_val_000000.jpg', 'refseg', text='the red circle')
    result.pred_text              # the generated answer, e.g. 'Sure, <SEG>.'
    result.pred_instances.masks   # (1, H, W) bool, at the image's size

The question is the task's first (fixed) template from ``mmxsam.datasets.prompts`` filled with ``text``
(imgconv: the question itself; refseg: the expression; reaseg: the query; genseg / ovseg: ``categories``;
vgdseg / intseg: one ``<region>`` per visual-prompt mask; gcgseg: nothing). The answer is generated
(greedy, ``mode='generation'``) unless ``mode='teacher_forcing'`` with an ``answer``.
"""
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from ..datasets.prompts import build_turns, format_phrase, format_phrases, format_regions, get_task_prompts
from ..datasets.utils.mask_codec import encode_mask

TASKS = ('imgconv', 'genseg', 'ovseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg', 'intseg')


def build_question(task: str, text: Optional[str] = None, categories: Optional[Sequence[str]] = None,
                   num_regions: int = 0) -> str:
    """The task's first question template filled in (see the module docstring)."""
    if task not in TASKS:
        raise ValueError(f'task must be one of {TASKS}, got {task!r}')
    if text is not None and not str(text).strip():
        text = None  # an empty or blank prompt counts as none: the checks below name what is missing
    if categories is not None:
        blank = [i for i, c in enumerate(categories) if not str(c).strip()]
        if blank:
            raise ValueError(f'{task}: category name(s) at position(s) {blank} are empty')
    if task == 'imgconv':
        if not text:
            raise ValueError('imgconv needs text (the question)')
        return text
    if task in ('genseg', 'ovseg'):
        if not categories:
            raise ValueError(f'{task} needs categories (a list of class names)')
        return get_task_prompts(task).pick_question(None, categories=format_phrases(categories))
    if task in ('refseg', 'reaseg'):
        if not text:
            raise ValueError(f'{task} needs text (the referring expression or reasoning query)')
        name = 'refseg' if task == 'refseg' else 'reaseg_short'
        key = 'phrase' if task == 'refseg' else 'sent'
        return get_task_prompts(name).pick_question(None, **{key: format_phrase(text)})
    if task in ('vgdseg', 'intseg'):
        if num_regions < 1:
            raise ValueError(f'{task} needs at least one visual-prompt mask')
        return get_task_prompts(task).pick_question(None, regions=format_regions(num_regions))
    return get_task_prompts('gcgseg').pick_question(None)


def build_record(task: str, question: str, answer: Optional[str] = None,
                 vprompt_masks: Sequence[np.ndarray] = (), sample_idx: int = 0, **extra) -> dict:
    """A data record (the data sets' contract, ``XSAMBaseDataset``) for one question on one image; add
    ``img`` (array) or ``img_path``. ``extra`` goes in as is (e.g. ``category_ids``, ``prompt_only``)."""
    return dict(task=task, source='inference', img_id=sample_idx, sample_idx=sample_idx,
                conversations=build_turns([(question, answer)]), instances=[],
                vprompts=[encode_mask(np.asarray(m, dtype=np.uint8)) for m in vprompt_masks], **extra)


def build_inference_pipeline(model: torch.nn.Module, from_file: bool = False) -> Compose:
    """Load (a file, or the ``img`` array), decode prompts, resize to the SAM input size, tokenize: the
    evaluation pipeline of every task, sized and tokenized from the model itself."""
    sam_size = model.data_preprocessor.sam_size
    return Compose([
        dict(type='LoadImageFromFile') if from_file else dict(type='mmdet.LoadImageFromNDArray'),
        dict(type='LoadXSAMAnnotations'),
        dict(type='XSAMResize', scale=(sam_size, sam_size), keep_ratio=True),
        dict(type='PackXSAMInputs', tokenizer=model.llm.tokenizer, chat_template=model.llm.chat_template)
    ])


def init_xsam(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
              cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build the model of an X-SAM config and load ``checkpoint`` (the stage checkpoints of the
    config's ``init_cfg`` are not needed and not read). ``model.cfg`` holds the config."""
    from mmdet.registry import MODELS
    import mmxsam  # noqa: F401  (registration)
    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.init_cfg = None
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=False, logger='current')
    model.cfg = cfg
    return model.to(device).eval()


def inference_xsam(model: torch.nn.Module,
                   image: Union[str, np.ndarray],
                   task: str,
                   text: Optional[str] = None,
                   categories: Optional[Sequence[str]] = None,
                   vprompt_masks: Optional[Sequence[np.ndarray]] = None,
                   answer: Optional[str] = None,
                   mode: str = 'generation') -> DetDataSample:
    """One image, one question -> the model's ``DetDataSample`` (``pred_text``, masks per task).

    Args:
        model: from :func:`init_xsam`.
        image: a file path or an (H, W, 3) BGR uint8 array.
        task: one of :data:`TASKS`.
        text, categories: see :func:`build_question`.
        vprompt_masks: (H, W) binary masks, one per ``<region>`` (vgdseg / intseg).
        answer: the answer for ``mode='teacher_forcing'`` (e.g. ``'Sure, <SEG>.'``).
        mode: ``'generation'`` or ``'teacher_forcing'``.
    """
    vprompt_masks = list(vprompt_masks or [])
    question = build_question(task, text, categories, len(vprompt_masks))
    if mode == 'teacher_forcing' and not answer:
        raise ValueError("mode='teacher_forcing' needs the answer")
    record = build_record(task, question, answer if mode == 'teacher_forcing' else None, vprompt_masks)
    if isinstance(image, str):
        record['img_path'] = image
    else:
        record['img'] = image
    pipeline = build_inference_pipeline(model, from_file=isinstance(image, str))
    data = pseudo_collate([pipeline(record)])
    old_mode = model.test_cfg.get('mode', 'teacher_forcing')
    model.test_cfg['mode'] = mode
    try:
        with torch.no_grad():
            return model.test_step(data)[0]
    finally:
        model.test_cfg['mode'] = old_mode
