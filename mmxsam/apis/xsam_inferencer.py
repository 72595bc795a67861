"""``XSAMInferencer``: every X-SAM task on one image or a batch, in the style of mmdet's ``DetInferencer``.

    from mmxsam.apis import XSAMInferencer
    inferencer = XSAMInferencer('configs/xsam/tiny_mixed.py', 'work_dirs/tiny_mixed/iter_1500.pth')
    inferencer('shapes.jpg', task='refseg', text='the red circle', out_dir='outputs/infer')
    inferencer([dict(img='a.jpg', task='imgconv', text='How many shapes are there?'),
                dict(img='b.jpg', task='vgdseg', vprompts=[dict(type='point', xy=(40, 52))]),
                dict(img='c.jpg', task='vgdseg', vprompts=[dict(type='box', xyxy=(10, 10, 50, 40))],
                     prompt_img='b.jpg')],             # cross-image: the prompt is drawn on b.jpg
               batch_size=3, return_vis=True)
    XSAMInferencer('work_dirs/tiny_mixed')               # a training work dir: its config + last checkpoint

A request is an image (path or BGR array) or a dict with ``img`` and any of ``task``, ``text``,
``categories``, ``stuff``, ``vprompts``, ``prompt_img``, ``answer``; call-level keyword arguments of the
same names fill what a request leaves out. See :meth:`XSAMInferencer.preprocess` for what each means.

Each prediction (``return_datasamples=False``) is a JSON-able dict: ``task``, ``question``, ``answer`` (the
generated text, or the given/forced answer), ``forced`` (the segmentation answer was forced), ``labels``,
``names``, ``scores``, ``bboxes`` and ``masks`` (COCO RLE with ``counts`` as str), ``warnings`` (why a
result is empty or was forced), and for genseg/ovseg the ``panoptic_seg`` file / ``segments_info`` (with
``pred_out_dir``). Nothing comes back empty without a warning that says why.
"""
import copy
import json
import os
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint
from mmengine.structures import InstanceData
from mmdet.registry import MODELS
from pycocotools import mask as mask_utils

from ..datasets.prompts import get_task_prompts
from ..visualization import draw_xsam_result
from .inference import TASKS, build_inference_pipeline, build_question, build_record
from .visual_prompt_specs import render_visual_prompts

REQUEST_KEYS = ('img', 'task', 'text', 'categories', 'stuff', 'vprompts', 'prompt_img', 'answer')
#: tasks whose answer must hold a ``<SEG>`` to give masks; the answer templates without fields can be forced
SEG_TASKS = ('genseg', 'ovseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg', 'intseg')
_FORCE_TEMPLATE = dict(genseg='genseg', ovseg='ovseg', refseg='refseg', reaseg='reaseg_short', vgdseg='vgdseg',
                       intseg='intseg')
_PHRASE = re.compile(r'<p>(.*?)</p>', re.S)


def _find_in_work_dir(work_dir: str) -> Tuple[str, str]:
    """(config, checkpoint) of a training work dir: the config the runner dumped, the last checkpoint."""
    configs = sorted(f for f in os.listdir(work_dir) if f.endswith('.py'))
    if len(configs) != 1:
        raise ValueError(f'{work_dir}: expected exactly one dumped config (*.py) in the work dir, found {configs}')
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            ckpt = f.read().strip()
        ckpt = ckpt if osp.isabs(ckpt) or osp.exists(ckpt) else osp.join(work_dir, osp.basename(ckpt))
    else:
        found = sorted((f for f in os.listdir(work_dir) if f.endswith('.pth')),
                       key=lambda f: osp.getmtime(osp.join(work_dir, f)))
        if not found:
            raise ValueError(f'{work_dir}: no last_checkpoint file and no *.pth checkpoint in the work dir')
        ckpt = osp.join(work_dir, found[-1])
    return osp.join(work_dir, configs[0]), ckpt


def _encode_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode()
    return rle


def _xyxy(x: int, y: int, w: int, h: int) -> List[int]:
    return [int(x), int(y), int(x + w), int(y + h)]


def _to_numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


class XSAMInferencer(BaseInferencer):
    """Inferencer of an X-SAM model (any stage-3 config).

    Args:
        model: a config file / ``Config``, or a training work dir (its dumped config and last checkpoint),
            or None to read the config from ``weights``.
        weights: the checkpoint (``.pth``); None with a config gives a randomly initialised model (warned).
        device: ``'cpu'``, ``'cuda'``, ... (default: what is available).
        strict: refuse a checkpoint whose keys or shapes do not match the config's model (default True:
            a config/checkpoint mismatch is an error naming the keys).
        cfg_options: overrides merged into the config (e.g. ``{'model.test_cfg.max_new_tokens': 32}``).
        merge_lora: fold an LLM trained with LoRA (``model.llm.lora``) into its base weights after loading
            (same outputs, no adapter overhead at inference). Default True.
        show_progress: a progress bar per batch.
    """

    preprocess_kwargs = {'task', 'text', 'categories', 'stuff', 'vprompts', 'prompt_img', 'answer'}
    forward_kwargs = {'force_seg', 'pred_score_thr'}
    visualize_kwargs = {'return_vis', 'show', 'no_save_vis', 'img_out_dir'}
    postprocess_kwargs = {'print_result', 'pred_out_dir', 'no_save_pred'}

    def __init__(self, model: Union[str, Config, None] = None, weights: Optional[str] = None,
                 device: Optional[str] = None, strict: bool = True, cfg_options: Optional[dict] = None,
                 merge_lora: bool = True, show_progress: bool = False) -> None:
        import mmxsam  # noqa: F401  (registration)
        if isinstance(model, str) and osp.isdir(model):
            model, found = _find_in_work_dir(model)
            weights = weights or found
        if isinstance(model, str) and not osp.isfile(model):
            raise FileNotFoundError(f'config file {model!r} does not exist')
        if weights is not None and not osp.isfile(weights):
            raise FileNotFoundError(f'checkpoint {weights!r} does not exist')
        self.strict = strict
        self.merge_lora = merge_lora
        if cfg_options:
            model = Config.fromfile(model) if isinstance(model, str) else copy.deepcopy(model)
            model.merge_from_dict(cfg_options)
        init_default_scope('mmdet')
        super().__init__(model=model, weights=weights, device=device or 'cpu', scope='mmdet',
                         show_progress=show_progress)
        self.num_requests = 0

    # ------------------------------------------------------------------ init
    def _init_model(self, cfg: ConfigDict, weights: Optional[str], device: str = 'cpu') -> torch.nn.Module:
        checkpoint = _load_checkpoint(weights, map_location='cpu') if weights is not None else None
        if not cfg:  # the config saved in the checkpoint (mmengine keeps it in the message hub)
            try:
                cfg_text = checkpoint['message_hub']['runtime_info']['cfg']
            except (KeyError, TypeError) as err:
                raise ValueError(f'{weights}: the checkpoint holds no config; pass the config file too') from err
            cfg.update(Config.fromstring(cfg_text, file_format='.py')._cfg_dict)
        if 'model' not in cfg:
            raise ValueError('the config has no "model"')
        cfg.model.init_cfg = None  # the stage checkpoints of a training config are not needed
        model = MODELS.build(cfg.model)
        if not hasattr(model, 'panoptic_fusion_head') or not hasattr(model, 'llm'):
            raise ValueError(f'XSAMInferencer needs an X-SAM model (stages 2/3), got {type(model).__name__}')
        model.cfg = cfg
        self._load_weights_to_model(model, checkpoint, cfg)
        if self.merge_lora and getattr(model.llm, 'has_lora', False):
            model.llm.merge_lora()
        return model.to(device).eval()

    def _load_weights_to_model(self, model: torch.nn.Module, checkpoint: Optional[dict], cfg) -> None:
        if checkpoint is None:
            print_log('XSAMInferencer: no checkpoint given: the model is randomly initialised', logger='current',
                      level=30)
            return
        state = checkpoint.get('state_dict', checkpoint)
        state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
        own = model.state_dict()
        wrong = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}' for k, v in state.items()
                 if k in own and tuple(v.shape) != tuple(own[k].shape)]
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if wrong:
            problems.append(f'{len(wrong)} shape mismatch(es), e.g. ' + '; '.join(wrong[:5]))
        if missing:
            problems.append(f'{len(missing)} model key(s) missing from the checkpoint, e.g. {missing[:5]}')
        if unexpected:
            problems.append(f'{len(unexpected)} checkpoint key(s) the model does not have, e.g. {unexpected[:5]}')
        if problems and (self.strict or wrong):
            raise ValueError('the checkpoint does not fit the config\'s model (a checkpoint of another config or '
                             'stage?): ' + ' | '.join(problems) + ('' if wrong else ' (pass strict=False to load '
                                                                   'the matching keys only)'))
        if problems:
            print_log('XSAMInferencer: ' + ' | '.join(problems), logger='current', level=30)
        model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)

    def _init_pipeline(self, cfg: ConfigDict):
        # images are read (and checked) in preprocess, so the pipeline takes arrays; sized from the model
        return build_inference_pipeline(self.model)

    def _init_collate(self, cfg: ConfigDict):
        return pseudo_collate  # requests are collated in preprocess (a cross-image request is two samples)

    def _init_visualizer(self, cfg: ConfigDict):
        return None  # results are drawn by mmxsam.visualization.draw_xsam_result

    # ------------------------------------------------------------------ requests
    def _inputs_to_list(self, inputs) -> list:
        if isinstance(inputs, dict):
            return [inputs]
        return super()._inputs_to_list(inputs)

    def _read_image(self, img, where: str) -> np.ndarray:
        if isinstance(img, np.ndarray):
            if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
                raise ValueError(f'{where}: an image array must be (H, W, 3) BGR uint8, got {img.shape} {img.dtype}')
            return img
        if not isinstance(img, str):
            raise ValueError(f'{where}: an image must be a file path or a BGR array, got {type(img).__name__}')
        if not osp.isfile(img):
            raise ValueError(f'{where}: image file {img!r} does not exist')
        image = mmcv.imread(img)
        if image is None:
            raise ValueError(f'{where}: cannot read {img!r} as an image')
        return image

    def _normalise(self, item, index: int, defaults: dict) -> dict:
        where = f'request {index}'
        request = dict(item) if isinstance(item, dict) else dict(img=item)
        unknown = sorted(set(request) - set(REQUEST_KEYS))
        if unknown:
            raise ValueError(f'{where}: unknown key(s) {unknown}; a request takes {REQUEST_KEYS}')
        for key, value in defaults.items():
            if request.get(key) is None and value is not None:
                request[key] = value
        if 'img' not in request:
            raise ValueError(f'{where}: no image ("img")')
        task = request.get('task')
        if task not in TASKS:
            raise ValueError(f'{where}: task must be one of {TASKS}, got {task!r}')
        request['where'] = where
        request['image'] = self._read_image(request['img'], where)
        shape = request['image'].shape[:2]
        categories = list(request.get('categories') or [])
        stuff = list(request.get('stuff') or [])
        if stuff:
            if task not in ('genseg', 'ovseg'):
                raise ValueError(f'{where}: "stuff" is for genseg / ovseg, not {task}')
            absent = [s for s in stuff if s not in categories]
            if absent:
                raise ValueError(f'{where}: stuff class(es) {absent} are not among the categories {categories}')
        # things first, then stuff: the panoptic merge treats label < num_things as a thing
        order = [i for i, c in enumerate(categories) if c not in stuff] + \
            [i for i, c in enumerate(categories) if c in stuff]
        request['category_order'] = order
        request['num_stuff'] = len(stuff)
        prompt_img = request.get('prompt_img')
        if prompt_img is not None and task != 'vgdseg':
            raise ValueError(f'{where}: prompt_img (a cross-image visual prompt) is for vgdseg, not {task}')
        specs = request.get('vprompts') or []
        if task in ('vgdseg', 'intseg') and not specs:
            raise ValueError(f'{where}: {task} needs visual prompts ("vprompts": points, scribbles, boxes or masks)')
        if specs and task not in ('vgdseg', 'intseg'):
            raise ValueError(f'{where}: visual prompts are for vgdseg / intseg, not {task}')
        if task == 'intseg' and len(specs) != 1:
            raise ValueError(f'{where}: intseg takes exactly one visual prompt, got {len(specs)}')
        if prompt_img is not None:
            request['prompt_image'] = self._read_image(prompt_img, f'{where} (prompt_img)')
            request['vprompt_masks'] = render_visual_prompts(specs, request['prompt_image'].shape[:2],
                                                             f'{where} (on prompt_img)')
        else:
            request['vprompt_masks'] = render_visual_prompts(specs, shape, where)
        try:
            request['question'] = build_question(task, request.get('text'), [categories[i] for i in order] or None,
                                                 len(specs))
        except ValueError as err:
            raise ValueError(f'{where}: {err}') from err
        if request.get('answer') is not None and '<SEG>' not in request['answer'] and task in SEG_TASKS:
            raise ValueError(f'{where}: a given answer for {task} must contain <SEG>, got {request["answer"]!r}')
        return request

    def _pack(self, request: dict, answer: Optional[str], index: int) -> List[dict]:
        """The request's packed sample(s): one, or two for a cross-image request (target, prompt image)."""
        task = request['task']
        if request.get('prompt_image') is None:
            record = build_record(task, request['question'], answer, request['vprompt_masks'], sample_idx=index,
                                  img=request['image'])
            packed = self.pipeline(record)
            if task in ('genseg', 'ovseg'):  # the request's own thing/stuff split (things first, see _normalise)
                packed['data_samples'].set_metainfo(
                    dict(num_things_classes=len(request['category_order']) - request['num_stuff']))
            return [packed]
        masks = request['vprompt_masks']
        # slot k: a category no other request of the batch uses, so the target reads the prompt image's slot k
        categories = [index * 1000 + k for k in range(len(masks))]
        h, w = request['image'].shape[:2]
        placeholders = [np.ones((h, w), np.uint8)] * len(masks)  # never read: the slots come from the prompt image
        target = build_record(task, request['question'], answer, placeholders, sample_idx=index,
                              img=request['image'], category_ids=categories)
        source = build_record(task, request['question'], answer, masks, sample_idx=index,
                              img=request['prompt_image'], category_ids=categories, prompt_only=True)
        return [self.pipeline(target), self.pipeline(source)]

    def preprocess(self, inputs: list, batch_size: int = 1, task: Optional[str] = None, text: Optional[str] = None,
                   categories: Optional[Sequence[str]] = None, stuff: Optional[Sequence[str]] = None,
                   vprompts: Optional[Sequence] = None, prompt_img=None, answer: Optional[str] = None) -> Iterable:
        """Requests -> batches of ``batch_size`` requests (``(data, requests)`` pairs).

        Args:
            inputs: images (paths / BGR arrays), a folder of images, or request dicts.
            task: one of :data:`~mmxsam.apis.inference.TASKS`.
            text: the question (imgconv), expression (refseg) or query (reaseg).
            categories: class names (genseg / ovseg); ``stuff``: those of them that are stuff classes
                (one merged segment per class; default: none).
            vprompts: visual prompts (vgdseg: one or more, intseg: one): point / scribble / box / mask specs,
                see :mod:`mmxsam.apis.visual_prompt_specs`.
            prompt_img: the image the ``vprompts`` are drawn on, if another than ``img`` (cross-image VGD).
            answer: a given answer (teacher forcing; must contain ``<SEG>`` for segmentation tasks). Without
                it the model generates the answer.
        """
        defaults = dict(task=task, text=text, categories=categories, stuff=stuff, vprompts=vprompts,
                        prompt_img=prompt_img, answer=answer)
        self.num_requests = 0  # request indices (region-sampling seeds, file names) restart every call
        requests = [self._normalise(item, i, defaults) for i, item in enumerate(inputs)]  # all checked first
        chunk: List[dict] = []
        for request in requests:
            if len(chunk) == batch_size:
                yield self._collate(chunk)
                chunk = []
            chunk.append(request)
        if chunk:
            yield self._collate(chunk)

    def _collate(self, requests: List[dict]) -> Tuple[dict, List[dict]]:
        samples = []
        for request in requests:
            request['index'] = self.num_requests
            self.num_requests += 1
            request['samples'] = len(samples)
            samples += self._pack(request, request.get('answer'), request['index'])
        return pseudo_collate(samples), requests

    # ------------------------------------------------------------------ forward
    def _run(self, data: dict, requests: List[dict]) -> List[DetDataSample]:
        model = self.model
        saved = model.test_cfg.get('vgd_prompt_source', 'same_image')
        try:
            if any(r.get('prompt_image') is not None for r in requests):
                model.test_cfg['vgd_prompt_source'] = 'cross_image'
            with torch.no_grad():
                out = model.test_step(data)
        finally:
            model.test_cfg['vgd_prompt_source'] = saved
        return [out[r['samples']] for r in requests]

    def forward(self, inputs: Tuple[dict, List[dict]], force_seg: bool = False,
                pred_score_thr: float = 0.3) -> List[dict]:
        """One batch -> ``[{'request', 'sample', 'warnings', 'forced'}]``.

        Args:
            force_seg: when a generated segmentation answer has no ``<SEG>`` (so no mask), answer again with the
                task's segmentation answer (``'<SEG>.'``) given (teacher forcing). GCG cannot be forced (its
                answer is a caption); it is reported instead.
            pred_score_thr: VGD returns every instance found for its regions; those scoring below this are
                left out (counted in the warnings). One-mask tasks (referring, reasoning, interactive, GCG
                phrases) always keep their mask and report its score.
        """
        data, requests = inputs
        samples = self._run(data, requests)
        preds = []
        redo = []
        for request, sample in zip(requests, samples):
            warnings = []
            text = sample.get('pred_text')
            if request['task'] in SEG_TASKS and text is not None and '<SEG>' not in text:
                if force_seg and request['task'] in _FORCE_TEMPLATE:
                    redo.append(len(preds))
                    warnings.append(f'the generated answer {text!r} has no <SEG>; the segmentation answer was forced')
                elif force_seg:
                    warnings.append(f'the generated answer {text!r} has no <SEG>, so no mask; a GCG answer cannot '
                                    'be forced (it is a caption with phrases)')
                else:
                    warnings.append(f'the generated answer {text!r} has no <SEG>, so no mask (force_seg=True answers '
                                    'with the segmentation answer instead)')
            preds.append(dict(request=request, sample=sample, warnings=warnings, forced=False, generated=text,
                              score_thr=pred_score_thr))
        if redo:
            forced = [preds[i]['request'] for i in redo]
            answers = [get_task_prompts(_FORCE_TEMPLATE[r['task']]).pick_answer(None) for r in forced]
            samples = []
            for request, answer in zip(forced, answers):
                request['samples'] = len(samples)
                samples += self._pack(request, answer, request['index'])
            for i, sample, answer in zip(redo, self._run(pseudo_collate(samples), forced), answers):
                preds[i].update(sample=sample, forced=True, answer=answer)
        return preds

    # ------------------------------------------------------------------ results
    @staticmethod
    def _names(pred: dict, labels: Sequence[int]) -> List[str]:
        request, task = pred['request'], pred['request']['task']
        if task in ('genseg', 'ovseg'):
            names = [request['categories'][i] for i in request['category_order']]
            return [names[i] for i in labels]
        if task in ('refseg', 'reaseg'):
            return [request['text']] * len(labels)
        if task == 'gcgseg':
            phrases = _PHRASE.findall(pred.get('generated') or '')
            return [phrases[i] if i < len(phrases) else f'phrase {i}' for i in labels]
        return [f'region {i}' for i in labels]

    def _result(self, pred: dict) -> dict:
        """The result of one request (see the module docstring; masks as (N, H, W) bool here)."""
        if 'result' not in pred:
            pred['result'] = self._make_result(pred)
        return copy.copy(pred['result'])

    def _make_result(self, pred: dict) -> dict:
        request, sample = pred['request'], pred['sample']
        task = request['task']
        out = dict(task=task, question=request['question'],
                   answer=pred.get('answer', request.get('answer')) if pred['generated'] is None or pred['forced']
                   else pred['generated'], forced=pred['forced'], warnings=list(pred['warnings']))
        if pred['forced']:
            out['generated'] = pred['generated']
        masks = np.zeros((0, ) + request['image'].shape[:2], bool)
        labels, scores = np.zeros(0, int), np.zeros(0)
        if task in ('genseg', 'ovseg') and 'pred_panoptic_seg' in sample:
            order = request['category_order']
            pan = _to_numpy(sample.pred_panoptic_seg.sem_seg)[0]
            seg_scores = sample.pred_panoptic_seg.metainfo.get('segment_scores', {})
            ids = [int(i) for i in np.unique(pan) if int(i) % INSTANCE_OFFSET < len(order)]  # VOID excluded
            masks = np.stack([pan == i for i in ids]) if ids else masks
            labels = np.array([i % INSTANCE_OFFSET for i in ids], int)
            scores = np.array([seg_scores.get(i, np.nan) for i in ids])
            out['segments_info'] = [dict(id=i, label=int(order[i % INSTANCE_OFFSET]),
                                         isthing=bool(i % INSTANCE_OFFSET < len(order) - request['num_stuff']),
                                         area=int((pan == i).sum())) for i in ids]
            out['panoptic_seg'] = pan
        elif task != 'imgconv' and 'pred_instances' in sample:
            inst = sample.pred_instances
            masks, labels, scores = (_to_numpy(inst.masks).astype(bool), _to_numpy(inst.labels).astype(int),
                                     _to_numpy(inst.scores).astype(float))
            keep = masks.any(axis=(1, 2))
            if (~keep).any():
                out['warnings'].append(f'{int((~keep).sum())} predicted mask(s) were empty and are left out')
                masks, labels, scores = masks[keep], labels[keep], scores[keep]
            if task == 'vgdseg':
                low = scores < pred['score_thr']
                if low.any():
                    out['warnings'].append(f'{int(low.sum())} of {len(scores)} instance(s) scored below '
                                           f'pred_score_thr={pred["score_thr"]} (best {scores.max():.3f}) and are '
                                           'left out')
                    masks, labels, scores = masks[~low], labels[~low], scores[~low]
        names = self._names(pred, labels.tolist())
        if task in ('genseg', 'ovseg'):
            labels = np.array([request['category_order'][i] for i in labels.tolist()], int)
        out.update(labels=labels.tolist(), names=names, scores=[round(float(s), 4) for s in scores],
                   bboxes=[_xyxy(*cv2.boundingRect(m.astype(np.uint8))) for m in masks],
                   masks=masks)
        if task != 'imgconv' and len(masks) == 0 and not out['warnings']:
            out['warnings'].append('the model found no mask for this prompt (every query scored below the '
                                   'thresholds)')
        return out

    def visualize(self, inputs: list, preds: List[dict], return_vis: bool = False, show: bool = False,
                  no_save_vis: bool = False, img_out_dir: str = '') -> Optional[List[np.ndarray]]:
        """Draw every result (``draw_xsam_result``) -> BGR canvases; saved as ``img_out_dir/<name>.png``."""
        if no_save_vis:
            img_out_dir = ''
        if not (return_vis or show or img_out_dir):
            return None
        canvases = []
        for pred in preds:
            request = pred['request']
            result = self._result(pred)
            sample = DetDataSample(pred_text=result['answer'] or '')
            sample.pred_instances = InstanceData(masks=torch.from_numpy(result['masks']))
            labels = [f'{n} ({s:.2f})' for n, s in zip(result['names'], result['scores'])]
            image = request['image']
            if request.get('prompt_image') is None and request['vprompt_masks']:  # outline the prompts in white
                image = image.copy()
                for mask in request['vprompt_masks']:
                    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
                    cv2.drawContours(image, contours, -1, (255, 255, 255), 1)
            canvas = draw_xsam_result(image, sample, result['question'], labels)
            canvases.append(canvas)
            if show:
                mmcv.imshow(canvas, win_name=f'request {request["index"]}', wait_time=0)
            if img_out_dir:
                os.makedirs(img_out_dir, exist_ok=True)
                cv2.imwrite(osp.join(img_out_dir, self._file_stem(request) + '.png'), canvas)
        return canvases

    @staticmethod
    def _file_stem(request: dict) -> str:
        img = request['img']
        name = osp.splitext(osp.basename(img))[0] if isinstance(img, str) else 'image'
        return f'{request["index"]:05d}_{name}_{request["task"]}'

    def postprocess(self, preds: List[dict], visualization: Optional[List[np.ndarray]] = None,
                    return_datasample: bool = False, print_result: bool = False, no_save_pred: bool = False,
                    pred_out_dir: str = '') -> dict:
        """``{'predictions': [...], 'visualization': [...]}``: dicts (or the ``DetDataSample``s with
        ``return_datasample=True``); written to ``pred_out_dir/<name>.json`` (+ panoptic PNG) if given."""
        results = []
        for pred in preds:
            if return_datasample:
                sample = pred['sample']
                sample.set_metainfo(dict(warnings=pred['warnings'], forced=pred['forced']))
                results.append(sample)
                continue
            result = self._result(pred)
            for message in result['warnings']:
                print_log(f'XSAMInferencer: {pred["request"]["where"]}: {message}', logger='current', level=30)
            result['masks'] = [_encode_rle(m) for m in result['masks']]
            pan = result.pop('panoptic_seg', None)
            if pred_out_dir and not no_save_pred:
                os.makedirs(pred_out_dir, exist_ok=True)
                stem = self._file_stem(pred['request'])
                if pan is not None:
                    from panopticapi.utils import id2rgb
                    result['panoptic_seg'] = osp.join(pred_out_dir, stem + '_panoptic.png')
                    cv2.imwrite(result['panoptic_seg'], id2rgb(pan)[..., ::-1])
                with open(osp.join(pred_out_dir, stem + '.json'), 'w') as f:
                    json.dump(result, f)
            if print_result:
                print(json.dumps({k: v for k, v in result.items() if k != 'masks'}))
            results.append(result)
        return dict(predictions=results, visualization=visualization)

    def __call__(self, inputs, batch_size: int = 1, return_datasamples: bool = False, out_dir: str = '',
                 return_vis: bool = False, no_save_vis: bool = False, no_save_pred: bool = False,
                 **kwargs) -> Dict[str, list]:
        """Run every request; ``out_dir`` writes ``vis/*.png`` and ``preds/*.json`` as mmdet's DetInferencer.
        Other keyword arguments: see :meth:`preprocess` (request defaults), :meth:`forward` (``force_seg``)."""
        img_out_dir = osp.join(out_dir, 'vis') if out_dir else ''
        pred_out_dir = osp.join(out_dir, 'preds') if out_dir else ''
        return super().__call__(inputs, return_datasamples=return_datasamples, batch_size=batch_size,
                                return_vis=return_vis, no_save_vis=no_save_vis, img_out_dir=img_out_dir,
                                no_save_pred=no_save_pred, pred_out_dir=pred_out_dir, **kwargs)
