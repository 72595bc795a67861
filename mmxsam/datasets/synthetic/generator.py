"""Generate the bundled synthetic multi-task "shapes" data set in the real public formats.

Python API::

    from mmxsam.datasets.synthetic import ShapesConfig, generate_shapes_dataset
    summary = generate_shapes_dataset('data/shapes', ShapesConfig(num_train=300, num_val=100))

CLI: ``python tools/dataset_converters/generate_shapes.py data/shapes``.

Layout written under ``out_dir`` (``{split}`` is ``train`` or ``val``)::

    images/shapes_{split}_{index:06d}.jpg          all images (one folder, like COCO's train2014 for refer)
    annotations/instances_{split}.json              COCO instances (things, RLE segmentations)
    annotations/panoptic_{split}.json               COCO panoptic (things + stuff)
    annotations/panoptic_{split}/*.png              panoptic PNGs (segment id = R + 256 G + 256^2 B)
    annotations/semantic_{split}/*.png              semantic label maps (things then stuff, 255 = unlabeled)
    annotations/meta_{split}.json                   scene attributes (shape/colour/size/position per object)
    refshapes/refs(unc).p, refshapes/instances.json refer API layout (RefCOCO-style; splits train/val)
    reason_seg/{split}/*.jpg + *.json               LISA ReasonSeg labelme JSONs (text, is_sentence, shapes)
    reason_seg/explanatory/train.json               LISA explanatory answers
    gcg/grandf_gcg_{split}.json                     GranD-f GCG training layout
    gcg/val_test/{split}_gcg_coco_{mask,caption}_gt.json   GCG evaluation ground truth (val split)
    vgd/vgd_{split}.json                            COCO-VGD layout with point/scribble/box/mask prompts
    llava/pretrain_{split}.json                     LLaVA-558K-style captions (stage 2)
    llava/conversations_{split}.json                LLaVA-665K-style chats, incl. pure-text samples
    generation.json                                 the config, counts, skips and timing of this run

Determinism: image ``i`` of split ``s`` is drawn from ``numpy.random.default_rng([seed, s, i])``, so it
does not depend on how many images are generated; the same config always writes the same files.
"""
import json
import os
import os.path as osp
import pickle
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import cv2
import numpy as np

from ..utils.mask_codec import decode_mask, mask_to_polygons
from ..utils.visual_prompts import encode_visual_prompts, generate_visual_prompts, scale_prompt_params
from .constants import STUFF_IDS, THING_IDS
from .formats import (coco_categories, gcg_val_records, grandf_record, id2rgb, image_record, instance_annotations,
                      llava_records, meta_record, panoptic_record, reasonseg_record, refer_refs, vgd_record)
from .scene import Scene, sample_scene

SPLITS = ('train', 'val')
_SPLIT_CODE = {'train': 0, 'val': 1}
_IMAGE_ID_OFFSET = {'train': 0, 'val': 500000}
GENERATOR_VERSION = 1


@dataclass
class ShapesConfig:
    """Parameters of the synthetic data set. ``validate()`` rejects impossible values."""
    num_train: int = 300
    num_val: int = 100
    image_size: int = 128
    min_objects: int = 1
    max_objects: int = 5
    seed: int = 0
    jpeg_quality: int = 95
    text_only_every: int = 10  # one pure-text conversation per this many images (0: none)

    def validate(self) -> None:
        errors = []
        for name in ('num_train', 'num_val', 'min_objects', 'seed', 'text_only_every'):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                errors.append(f'{name} must be a non-negative integer, got {getattr(self, name)!r}')
        if not errors and self.num_train + self.num_val == 0:
            errors.append('num_train + num_val must be > 0 (nothing to generate)')
        if not isinstance(self.image_size, int) or not 32 <= self.image_size <= 4096:
            errors.append(f'image_size must be an integer in [32, 4096], got {self.image_size!r}')
        if not isinstance(self.max_objects, int) or not 1 <= self.max_objects <= 8:
            errors.append(f'max_objects must be in [1, 8] (more shapes cannot be placed visibly), '
                          f'got {self.max_objects!r}')
        elif isinstance(self.min_objects, int) and self.min_objects > self.max_objects:
            errors.append(f'min_objects ({self.min_objects}) must be <= max_objects ({self.max_objects})')
        if not isinstance(self.jpeg_quality, int) or not 1 <= self.jpeg_quality <= 100:
            errors.append(f'jpeg_quality must be in [1, 100], got {self.jpeg_quality!r}')
        if errors:
            raise ValueError('invalid synthetic data parameters:\n  ' + '\n  '.join(errors))

    def split_size(self, split: str) -> int:
        return self.num_train if split == 'train' else self.num_val


def _sample_valid_scene(cfg: ShapesConfig, rng: np.random.Generator, where: str) -> Scene:
    for _ in range(20):
        scene = sample_scene(rng, cfg.image_size, cfg.min_objects, cfg.max_objects)
        if len(scene.objects) >= cfg.min_objects:
            return scene
    raise RuntimeError(f'{where}: could not place {cfg.min_objects} visible shapes in a {cfg.image_size}px image '
                       'in 20 scenes; lower min_objects or raise image_size')


def _write_json(path: str, obj) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f)


def _imwrite(path: str, img: np.ndarray, params=None) -> None:
    if not cv2.imwrite(path, img, params or []):
        raise OSError(f'could not write image {path}')


def _generate_split(cfg: ShapesConfig, out_dir: str, split: str, progress: bool, counters: Dict) -> Dict:
    n = cfg.split_size(split)
    img_dir = osp.join(out_dir, 'images')
    pan_dir = osp.join(out_dir, 'annotations', f'panoptic_{split}')
    sem_dir = osp.join(out_dir, 'annotations', f'semantic_{split}')
    rs_dir = osp.join(out_dir, 'reason_seg', split)
    for d in (img_dir, pan_dir, sem_dir, rs_dir):
        os.makedirs(d, exist_ok=True)
    prompt_params = scale_prompt_params(cfg.image_size)  # COCO-VGD sizes scaled from ~640 px

    images, instances, panoptic, meta, grandf, vgd, pretrain, convs, refs = [], [], [], [], [], [], [], [], []
    explanations, gcg_images, gcg_masks, gcg_caps = [], [], [], []
    ref_id = _IMAGE_ID_OFFSET[split] * 10
    sent_id = ref_id
    iterator = range(n)
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, desc=f'shapes/{split}', unit='img', leave=False)
    for i in iterator:
        rng = np.random.default_rng([cfg.seed, _SPLIT_CODE[split], i])
        image_id = _IMAGE_ID_OFFSET[split] + i + 1
        stem = f'shapes_{split}_{i:06d}'
        file_name = f'{stem}.jpg'
        scene = _sample_valid_scene(cfg, rng, where=f'{split} image {i}')
        ann_ids = [image_id * 100 + k for k in range(len(scene.objects))]

        bgr = np.ascontiguousarray(scene.image[..., ::-1])
        _imwrite(osp.join(img_dir, file_name), bgr, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        images.append(image_record(image_id, file_name, scene))
        anns = instance_annotations(scene, image_id, ann_ids)
        instances += anns
        pan, seg_map, sem_map = panoptic_record(scene, image_id, f'{stem}.png')
        panoptic.append(pan)
        _imwrite(osp.join(pan_dir, f'{stem}.png'), np.ascontiguousarray(id2rgb(seg_map)[..., ::-1]))
        _imwrite(osp.join(sem_dir, f'{stem}.png'), sem_map)
        meta.append(meta_record(scene, image_id, file_name, ann_ids))

        new_refs = refer_refs(scene, image_id, file_name, ann_ids, split, ref_id, sent_id, rng)
        refs += new_refs
        ref_id += len(new_refs)
        sent_id += sum(len(r['sentences']) for r in new_refs)

        labelme, explanation = reasonseg_record(scene, file_name, rng)
        if labelme is None:
            counters['reason_seg_skipped'] += 1
        else:
            shutil.copyfile(osp.join(img_dir, file_name), osp.join(rs_dir, file_name))
            _write_json(osp.join(rs_dir, f'{stem}.json'), labelme)
            explanations.append(explanation)

        grandf.append(grandf_record(scene, stem, file_name))
        if split == 'val':
            img, masks, cap = gcg_val_records(scene, stem, file_name, ann_id0=image_id * 100)
            gcg_images.append(img)
            gcg_masks += masks
            gcg_caps.append(cap)

        prompts = [encode_visual_prompts(generate_visual_prompts(o.mask, rng, **prompt_params)) for o in scene.objects]
        vgd.append(vgd_record(scene, image_id, file_name, anns, prompts))

        add_text = cfg.text_only_every > 0 and i % cfg.text_only_every == 0
        pre, conv = llava_records(scene, stem, file_name, rng, add_text)
        pretrain.append(pre)
        convs += conv

    ann_dir = osp.join(out_dir, 'annotations')
    _write_json(osp.join(ann_dir, f'instances_{split}.json'),
                dict(images=images, annotations=instances, categories=coco_categories(panoptic=False)))
    _write_json(osp.join(ann_dir, f'panoptic_{split}.json'),
                dict(images=images, annotations=panoptic, categories=coco_categories(panoptic=True)))
    _write_json(osp.join(ann_dir, f'meta_{split}.json'), meta)
    _write_json(osp.join(out_dir, 'gcg', f'grandf_gcg_{split}.json'), grandf)
    if split == 'val':
        cats = [dict(id=1, name='object')]
        _write_json(osp.join(out_dir, 'gcg', 'val_test', f'{split}_gcg_coco_mask_gt.json'),
                    dict(images=gcg_images, annotations=gcg_masks, categories=cats))
        _write_json(osp.join(out_dir, 'gcg', 'val_test', f'{split}_gcg_coco_caption_gt.json'),
                    dict(images=gcg_images, annotations=gcg_caps))
    _write_json(osp.join(out_dir, 'vgd', f'vgd_{split}.json'), vgd)
    _write_json(osp.join(out_dir, 'llava', f'pretrain_{split}.json'), pretrain)
    _write_json(osp.join(out_dir, 'llava', f'conversations_{split}.json'), convs)
    if split == 'train':
        _write_json(osp.join(out_dir, 'reason_seg', 'explanatory', 'train.json'), explanations)
    return dict(refs=refs, num_images=len(images), num_instances=len(instances), num_refs=len(refs))


def _refer_instances(out_dir: str, splits: List[str]) -> Dict:
    """The refer layout's ``instances.json``: all images of every split, polygon segmentations (as
    RefCOCO's, which the refer API's ``getMask`` requires)."""
    images, anns = [], []
    for split in splits:
        with open(osp.join(out_dir, 'annotations', f'instances_{split}.json')) as f:
            coco = json.load(f)
        images += coco['images']
        for a in coco['annotations']:
            h, w = a['segmentation']['size']
            polys = mask_to_polygons(decode_mask(a['segmentation'], h, w))
            anns.append(dict(a, segmentation=polys))
    return dict(images=images, annotations=anns, categories=coco_categories(panoptic=False))


def generate_shapes_dataset(out_dir: str, cfg: Optional[ShapesConfig] = None, progress: bool = True,
                            force: bool = False, **overrides) -> Dict:
    """Write the synthetic data set to ``out_dir``; returns the summary also saved as ``generation.json``.

    If ``out_dir/generation.json`` records the same config and generator version, nothing is
    regenerated (pass ``force=True`` to rewrite).
    """
    cfg = cfg or ShapesConfig()
    if overrides:
        unknown = sorted(set(overrides) - set(asdict(cfg)))
        if unknown:
            raise ValueError(f'unknown ShapesConfig fields {unknown}; known: {sorted(asdict(cfg))}')
        cfg = ShapesConfig(**{**asdict(cfg), **overrides})
    cfg.validate()
    summary_path = osp.join(out_dir, 'generation.json')
    if not force and osp.exists(summary_path):
        with open(summary_path) as f:
            previous = json.load(f)
        if previous.get('config') == asdict(cfg) and previous.get('generator_version') == GENERATOR_VERSION:
            previous['reused'] = True
            return previous
    if osp.isdir(out_dir) and os.listdir(out_dir):
        if not osp.exists(summary_path):
            raise FileExistsError(f'{out_dir} is not empty and was not written by this generator (no generation.json); '
                                  'refusing to overwrite it: choose an empty or new folder')
        for sub in ('images', 'annotations', 'refshapes', 'reason_seg', 'gcg', 'vgd', 'llava'):
            shutil.rmtree(osp.join(out_dir, sub), ignore_errors=True)
    os.makedirs(out_dir, exist_ok=True)

    start = time.time()
    counters = dict(reason_seg_skipped=0)
    results = {}
    for split in SPLITS:
        if cfg.split_size(split) > 0:
            results[split] = _generate_split(cfg, out_dir, split, progress, counters)

    refer_dir = osp.join(out_dir, 'refshapes')
    os.makedirs(refer_dir, exist_ok=True)
    with open(osp.join(refer_dir, 'refs(unc).p'), 'wb') as f:
        pickle.dump([r for res in results.values() for r in res['refs']], f)
    _write_json(osp.join(refer_dir, 'instances.json'),
                _refer_instances(out_dir, list(results)))

    summary = dict(
        generator_version=GENERATOR_VERSION, config=asdict(cfg), seconds=round(time.time() - start, 2),
        num_images={s: r['num_images'] for s, r in results.items()},
        num_instances={s: r['num_instances'] for s, r in results.items()},
        num_refs={s: r['num_refs'] for s, r in results.items()},
        skipped=counters, thing_ids=THING_IDS, stuff_ids=STUFF_IDS, reused=False)
    _write_json(summary_path, summary)
    return summary
