"""Visual grounded segmentation (COCO-VGD, ``vgdseg``) and interactive segmentation (``intseg``).

File: the COCO-VGD JSON (``tools/dataset_converters/generate_coco_vgd.py``, or the released
``vgdseg_annotations``; :func:`~mmxsam.datasets.synthetic.formats.vgd_record`), a list of::

    dict(image_file, image_id, image_size=[h, w], image_info,
         annotations=[dict(<COCO annotation>, visual_prompts=dict(point_visual_prompt=<RLE>,
                           scribble_visual_prompt=<RLE>, box_visual_prompt=<RLE>, mask_visual_prompt=<RLE>))])

Images are found under ``data_prefix['img']``.

Samples (reference §4 "VGD"): a sample lists K *slots*, each a ``<p><region></p>`` whose visual prompt is
one instance's prompt mask; the targets are **all** instances of the slot's category, ``label`` = slot index.

* **Training** (``rng`` = ``np.random``, drawn at every read): the image's positive categories in random
  order; each gets ONE prompt, from a random instance of that category (among those with a usable
  prompt) and, with ``prompt_type=None``, a random non-empty prompt type of that instance.
* **Evaluation** (``rng`` None, ``prompt_mode='fixed'``, the default in ``test_mode``): the positive
  categories in sorted category-id order, each prompted by its first instance (file order) with a non-empty
  prompt of the fixed ``prompt_type`` (required in ``test_mode``), first template.

Prompts come from the same image. The official model re-draws every slot's prompt from any image of the
per-GPU batch (``_get_vprompt_feats_and_masks``, reference §1.7): cross-image prompts are the model's
business, not the data set's. Likewise **negative categories** (a slot whose category is absent from the
image, so it has no target) need a prompt from another image: with ``use_negative_sample=True`` a read
draws, with probability 0.5, ``U{0..min(num_negative, #absent categories)}`` absent categories (official:
``randint(0, 5)``, ``num_class=5``) and stores them as ``negative_category_ids``; they are **not** put in
the conversation or ``vprompts``: a batch-level sampler (not written yet) must add the slots. Default False.

Record after :meth:`build_conversation` (see :mod:`.xsam_base_dataset`)::

    phrases = ['<region>'] * K
    vprompts = [<RLE of slot i's prompt>, ...]            # K, same image size
    vprompt_types = ['point' | 'scribble' | 'box' | 'mask', ...]
    vprompt_ann_ids = [<ann id the prompt of slot i comes from>, ...]
    category_ids = [<COCO category id of slot i>, ...]    # label i -> category_ids[i] (VGD metric)
    instances = [dict(mask, label=i, ignore_flag=0, ann_id, category_id), ...]
    negative_category_ids = [...]                         # only with use_negative_sample
    conversations = one question listing K regions, one ``<SEG>`` answer

``metainfo``: ``category_ids`` (every category of the file, or of ``category_file``, sorted) and
``category_names`` (same order; from ``category_file``, a COCO JSON with ``categories``, else the ids as
strings): for logging and the metric, not for prompting.

Bad input: crowd annotations are skipped (counted ``crowd``). An annotation without ``category_id``, with a
segmentation that cannot be decoded or is empty, or without the ``visual_prompts`` key of ``prompt_type``
(with ``prompt_type=None``: without any of the four keys) raises a ``ValueError`` naming it, or with
``skip_invalid=True`` is dropped and counted (``invalid_annotation``, ``missing_prompt``). An *empty*
prompt (all components <= 5 px) is never used as a prompt source (counted ``empty_prompt``) but its
instance stays a target. An image without any usable prompt is skipped (``no_prompt``). Counts are in
:attr:`skip_counts` and logged.
"""
import logging
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional

from mmdet.registry import DATASETS
from mmengine.logging import print_log
from pycocotools import mask as mask_utils

from ..models.language.constants import REGION_TOKEN
from .prompts import build_turns, draw_index, format_regions, get_task_prompts
from .utils.annotation_io import load_json, require_keys
from .utils.mask_codec import _to_rles
from .utils.visual_prompts import PROMPT_TYPES
from .xsam_base_dataset import XSAMBaseDataset

PROMPT_KEYS = {t: f'{t}_visual_prompt' for t in PROMPT_TYPES}
SKIP_REASONS = ('crowd', 'invalid_annotation', 'missing_prompt', 'empty_prompt', 'no_prompt')


def _area(segm, height: int, width: int) -> int:
    rles = _to_rles(segm, height, width)
    if not rles:
        return 0
    return int(mask_utils.area(mask_utils.merge(rles) if len(rles) > 1 else rles[0]))


def _choice(n: int, rng) -> int:
    return draw_index(n, rng) if n > 1 else 0


@DATASETS.register_module()
class XSAMVGDSegDataset(XSAMBaseDataset):
    """COCO-VGD visual grounded segmentation (see the module docstring).

    Args:
        ann_file (str): the VGD JSON (relative to ``data_root``).
        data_prefix (dict): ``img``: the image folder.
        prompt_type (str, optional): ``'point'``, ``'scribble'``, ``'box'`` or ``'mask'``; None (training
            only): a random non-empty type per prompted instance and read.
        use_negative_sample (bool): draw negative categories into ``negative_category_ids`` (needs a
            batch-level prompt sampler; see the module docstring). Defaults to False.
        num_negative (int): at most this many negatives per read (official ``num_class=5``).
        category_file (str, optional): a COCO JSON whose ``categories`` give the label space and names.
        skip_invalid (bool): drop and count invalid annotations instead of raising. Defaults to False.
        **kwargs: :class:`XSAMBaseDataset` (``prompt_mode``, ``source_name``) and mmdet's ``BaseDetDataset``.
    """

    TASK = 'vgdseg'

    def __init__(self, *args, prompt_type: Optional[str] = None, use_negative_sample: bool = False,
                 num_negative: int = 5, category_file: Optional[str] = None, skip_invalid: bool = False,
                 data_prefix: Optional[dict] = None, **kwargs) -> None:
        if prompt_type is not None and prompt_type not in PROMPT_TYPES:
            raise ValueError(f'prompt_type must be None or one of {PROMPT_TYPES}, got {prompt_type!r}')
        if prompt_type is None and kwargs.get('test_mode', False):
            raise ValueError(f'{type(self).__name__}: evaluation needs a fixed prompt_type, one of {PROMPT_TYPES}')
        if int(num_negative) < 0:
            raise ValueError(f'num_negative must be >= 0, got {num_negative!r}')
        self.prompt_type = prompt_type
        self.use_negative_sample = bool(use_negative_sample)
        self.num_negative = int(num_negative)
        self.category_file = category_file
        self.skip_invalid = skip_invalid
        self.skip_counts: Dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self.cat_ids: List[int] = []
        super().__init__(*args, data_prefix=dict(img='') if data_prefix is None else data_prefix, **kwargs)

    # ------------------------------------------------------------------------------------------------ loading
    def _invalid(self, reason: str, message: str) -> None:
        if not self.skip_invalid:
            raise ValueError(f'{self.ann_file}: {message} (pass skip_invalid=True to drop such annotations)')
        self.skip_counts[reason] += 1

    def _usable_prompts(self, ann: dict, height: int, width: int, where: str) -> Optional[Dict[str, dict]]:
        """{type: RLE} of the non-empty prompts to keep (only ``prompt_type`` when fixed); None if invalid."""
        vps = ann.get('visual_prompts') or {}
        types = [self.prompt_type] if self.prompt_type else list(PROMPT_TYPES)
        present = [t for t in types if vps.get(PROMPT_KEYS[t]) is not None]
        if not present:
            self._invalid('missing_prompt', f'{where}: no {" / ".join(PROMPT_KEYS[t] for t in types)} in '
                          'visual_prompts')
            return None
        out = {}
        for t in present:
            try:
                area = _area(vps[PROMPT_KEYS[t]], height, width)
            except (ValueError, TypeError) as e:
                self._invalid('invalid_annotation', f'{where}: {PROMPT_KEYS[t]} cannot be decoded: {e}')
                return None
            if area > 0:
                out[t] = vps[PROMPT_KEYS[t]]
            else:
                self.skip_counts['empty_prompt'] += 1
        return out

    def _load_categories(self, seen: set) -> None:
        names = {}
        if self.category_file:
            path = self.category_file
            if not osp.isabs(path) and self.data_root:
                path = osp.join(self.data_root, path)
            coco = load_json(path, self.backend_args, key='category_file', expect=dict, what='category file')
            require_keys(coco, ('categories', ), f'{path} (category_file)')
            for k, c in enumerate(coco['categories']):
                require_keys(c, ('id', 'name'), f'{path}: categories[{k}]')
            names = {c['id']: c['name'] for c in coco['categories']}
            unknown = sorted(seen - set(names))
            if unknown:
                raise ValueError(f'{self.ann_file}: category ids {unknown} are not in {path}')
        self.cat_ids = sorted(set(names) | seen)
        self._metainfo.update(category_ids=tuple(self.cat_ids),
                              category_names=tuple(str(names.get(c, c)) for c in self.cat_ids))

    def _load_objects(self) -> List[dict]:
        """One dict(img, objects=[dict(mask, category_id, ann_id, prompts={type: RLE})]) per image."""
        raw = load_json(self.ann_file, self.backend_args, what='COCO-VGD JSON')
        if not isinstance(raw, list):
            raise ValueError(f'{self.ann_file}: expected a list of image records (the COCO-VGD layout), got '
                             f'{type(raw).__name__}')
        img_dir = self.data_prefix.get('img', '')
        images, seen = [], set()
        for k, rec in enumerate(raw):
            require_keys(rec, ('image_file', 'image_id', 'image_size'), f'{self.ann_file}: record #{k}')
            size = rec['image_size']
            if not (isinstance(size, (list, tuple)) and len(size) == 2):
                raise ValueError(f"{self.ann_file}: record #{k} (image {rec['image_id']}): image_size must be "
                                 f'[height, width], got {size!r}')
            height, width = (int(v) for v in size)
            objects = []
            for k, ann in enumerate(rec.get('annotations', [])):
                where = f"image {rec.get('image_id')} ({rec.get('image_file')}) annotation {ann.get('id', k)}"
                if int(ann.get('iscrowd', 0)):
                    self.skip_counts['crowd'] += 1
                    continue
                if ann.get('category_id') is None:
                    self._invalid('invalid_annotation', f'{where}: no category_id')
                    continue
                try:
                    area = _area(ann.get('segmentation'), height, width)
                except (ValueError, TypeError) as e:
                    self._invalid('invalid_annotation', f'{where}: invalid segmentation: {e}')
                    continue
                if area == 0:
                    self._invalid('invalid_annotation', f'{where}: the mask is empty')
                    continue
                prompts = self._usable_prompts(ann, height, width, where)
                if prompts is None:
                    continue
                objects.append(dict(mask=ann['segmentation'], category_id=ann['category_id'],
                                    ann_id=ann.get('id', k), prompts=prompts))
            if not any(o['prompts'] for o in objects):
                self.skip_counts['no_prompt'] += 1
                continue
            seen.update(o['category_id'] for o in objects)
            images.append(dict(img=dict(img_path=osp.join(img_dir, rec['image_file']), img_id=rec['image_id'],
                                        height=height, width=width), objects=objects))
        self._load_categories(seen)
        return images

    def load_data_list(self) -> List[dict]:
        self.skip_counts = dict.fromkeys(SKIP_REASONS, 0)
        data_list = [dict(entry['img'], objects=entry['objects']) for entry in self._load_objects()]
        self._log_load(data_list)
        return data_list

    def _log_load(self, data_list: List[dict]) -> None:
        skipped = {k: v for k, v in self.skip_counts.items() if v}
        print_log(f'{self.source_name}({self.ann_file}, prompt_type={self.prompt_type}): {len(data_list)} samples'
                  + (f'; skipped {skipped}' if skipped else ''), logger='current',
                  level=logging.WARNING if skipped.keys() - {'crowd'} else logging.INFO)

    # ------------------------------------------------------------------------------------------------ prompts
    def _pick_prompt(self, obj: dict, rng) -> str:
        if self.prompt_type is not None:
            return self.prompt_type
        types = [t for t in PROMPT_TYPES if t in obj['prompts']]
        return types[_choice(len(types), rng)]

    def _finish(self, info: dict, slots: List[tuple], instances: List[dict], rng) -> dict:
        """``slots``: [(category_id, prompting object, prompt type)]; fill the record's fields."""
        info.update(
            phrases=[REGION_TOKEN] * len(slots),
            vprompts=[obj['prompts'][t] for _, obj, t in slots],
            vprompt_types=[t for _, _, t in slots],
            vprompt_ann_ids=[obj['ann_id'] for _, obj, _ in slots],
            category_ids=[cid for cid, _, _ in slots],
            instances=instances)
        prompts = get_task_prompts(self.TASK)
        question = prompts.pick_question(rng, regions=format_regions(len(slots)))
        info['conversations'] = build_turns([(question, prompts.pick_answer(rng))], has_image=True)
        return info

    def sample_negatives(self, positive_ids, rng) -> List[int]:
        """Training with ``use_negative_sample``: p 0.5, ``U{0..min(num_negative, #absent)}`` absent ids."""
        if rng is None or not self.use_negative_sample or rng.random() >= 0.5:
            return []
        absent = [c for c in self.cat_ids if c not in set(positive_ids)]
        n = draw_index(min(self.num_negative, len(absent)) + 1, rng)
        return [absent[i] for i in rng.permutation(len(absent))[:n]]

    def build_conversation(self, info: dict, rng) -> dict:
        objects = info.pop('objects')
        by_cat: 'OrderedDict[int, List[dict]]' = OrderedDict()
        for obj in objects:
            by_cat.setdefault(obj['category_id'], []).append(obj)
        cats = sorted(c for c, objs in by_cat.items() if any(o['prompts'] for o in objs))
        if rng is not None and len(cats) > 1:
            cats = [cats[int(i)] for i in rng.permutation(len(cats))]
        slots, instances = [], []
        for label, cid in enumerate(cats):
            candidates = [o for o in by_cat[cid] if o['prompts']]
            obj = candidates[_choice(len(candidates), rng)]
            slots.append((cid, obj, self._pick_prompt(obj, rng)))
            instances += [dict(mask=o['mask'], label=label, ignore_flag=0, ann_id=o['ann_id'], category_id=cid)
                          for o in by_cat[cid]]
        if self.use_negative_sample:
            info['negative_category_ids'] = self.sample_negatives(cats, rng)
        return self._finish(info, slots, instances, rng)


@DATASETS.register_module()
class XSAMInteractiveSegDataset(XSAMVGDSegDataset):
    """Interactive segmentation (``intseg``, COCO-Interactive style, used for evaluation): one sample per
    instance with a usable prompt, a single ``<p><region></p>`` whose target is that instance only (label 0).

    Reads the VGD layout (e.g. the output of ``generate_coco_vgd.py`` on COCO val). The official
    ``intseg_val.json``, converted from PSALM's ``coco_interactive_val_psalm.json``, is assumed to use the
    same per-annotation ``visual_prompts`` (not verified against the released file). The prompt is the
    instance's own ``prompt_type`` prompt (None: a random non-empty type per read).
    """

    TASK = 'intseg'

    def load_data_list(self) -> List[dict]:
        self.skip_counts = dict.fromkeys(SKIP_REASONS, 0)
        data_list = []
        for entry in self._load_objects():
            data_list += [dict(entry['img'], objects=[obj]) for obj in entry['objects'] if obj['prompts']]
        self._log_load(data_list)
        return data_list

    def build_conversation(self, info: dict, rng) -> dict:
        obj = info.pop('objects')[0]
        instances = [dict(mask=obj['mask'], label=0, ignore_flag=0, ann_id=obj['ann_id'],
                          category_id=obj['category_id'])]
        return self._finish(info, [(obj['category_id'], obj, self._pick_prompt(obj, rng))], instances, rng)
