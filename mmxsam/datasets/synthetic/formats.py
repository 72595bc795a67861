"""Per-format records for one scene, in the real public layouts X-SAM's data sets use.

Each ``*_record`` function turns a :class:`~.scene.Scene` (plus ids) into the JSON-ready record of one
format; :mod:`.generator` collects them into files. Layout references: COCO panoptic/instances
(cocodataset.org format spec), refer (``refs(unc).p`` + ``instances.json``), LISA ReasonSeg (labelme
JSON with ``text``/``is_sentence``), GranD-f GCG (``groundings{phrase: {token_positives, rle_masks}}``
and the ``val_test`` COCO-style mask/caption ground truth), COCO-VGD (X-SAM's ``visual_prompts`` per
annotation) and LLaVA conversations.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..utils.mask_codec import encode_mask, mask_to_bbox, mask_to_polygons
from .constants import PALETTE, STUFF_CATEGORIES, STUFF_IDS, THING_CATEGORIES, THING_IDS, clean_category_name
from .language import (conversation_turns, grounded_caption, plain_caption, reasoning_queries, referring_expressions,
                       text_only_turns)
from .scene import Scene

SEMANTIC_IGNORE = 255
# semantic label value of each category: its index in (things..., stuff...)
SEMANTIC_LABEL: Dict[int, int] = {cid: i for i, cid in enumerate(THING_IDS + STUFF_IDS)}

PRETRAIN_QUESTIONS = (
    'Give a brief description of the image.',
    'Share a concise interpretation of the image provided.',
    'Write a terse but informative summary of the picture.',
    'Describe the image concisely.',
)


def coco_categories(panoptic: bool) -> List[Dict]:
    cats = [dict(id=cid, name=name, supercategory='shape', isthing=1, color=list(PALETTE[cid]))
            for cid, name, _ in THING_CATEGORIES]
    if panoptic:
        cats += [dict(id=cid, name=name, supercategory='background', isthing=0, color=list(PALETTE[cid]))
                 for cid, name, _, _ in STUFF_CATEGORIES]
    else:
        for c in cats:
            c.pop('isthing')
    return cats


def image_record(image_id: int, file_name: str, scene: Scene) -> Dict:
    return dict(id=image_id, file_name=file_name, height=scene.height, width=scene.width)


def instance_annotations(scene: Scene, image_id: int, ann_ids: Sequence[int], polygons: bool = False) -> List[Dict]:
    """COCO instance annotations (things only). RLE by default (exact); polygons for the refer layout."""
    anns = []
    for ann_id, obj in zip(ann_ids, scene.objects):
        segm = mask_to_polygons(obj.mask) if polygons else encode_mask(obj.mask)
        anns.append(dict(id=int(ann_id), image_id=image_id, category_id=obj.category_id, segmentation=segm,
                         area=float(obj.area), bbox=mask_to_bbox(obj.mask), iscrowd=0))
    return anns


def id2rgb(id_map: np.ndarray) -> np.ndarray:
    """COCO panoptic encoding of segment ids as RGB (``id = R + 256 G + 256^2 B``), ``(H, W, 3)`` uint8."""
    rgb = np.zeros(id_map.shape + (3,), np.uint8)
    ids = id_map.astype(np.int64)
    for c in range(3):
        rgb[..., c] = ids % 256
        ids = ids // 256
    return rgb


def panoptic_record(scene: Scene, image_id: int, png_name: str) -> Tuple[Dict, np.ndarray, np.ndarray]:
    """COCO panoptic annotation, its segment-id map ``(H, W)`` int32, and the semantic label map ``(H, W)`` uint8."""
    seg_map = np.zeros((scene.height, scene.width), np.int32)
    sem_map = np.full((scene.height, scene.width), SEMANTIC_IGNORE, np.uint8)
    segments = []
    regions = [(o.category_id, o.mask, 1) for o in scene.objects] + [(s.category_id, s.mask, 0) for s in scene.stuff]
    for seg_id, (cid, mask, isthing) in enumerate(regions, start=1):
        seg_map[mask] = seg_id
        sem_map[mask] = SEMANTIC_LABEL[cid]
        segments.append(dict(id=seg_id, category_id=cid, area=int(mask.sum()), bbox=mask_to_bbox(mask), iscrowd=0))
    return dict(image_id=image_id, file_name=png_name, segments_info=segments), seg_map, sem_map


def refer_refs(scene: Scene, image_id: int, file_name: str, ann_ids: Sequence[int], split: str,
               ref_id0: int, sent_id0: int, rng: np.random.Generator) -> List[Dict]:
    """refer-API records (``refs(unc).p``): one ref per object, 1-3 unique expressions each."""
    refs = []
    stem = file_name.rsplit('.', 1)[0]
    ref_id, sent_id = ref_id0, sent_id0
    for k, (ann_id, obj) in enumerate(zip(ann_ids, scene.objects)):
        sentences = []
        for sent in referring_expressions(scene, k, rng):
            sentences.append(dict(tokens=sent.split(), raw=sent, sent_id=sent_id, sent=sent))
            sent_id += 1
        refs.append(dict(ref_id=ref_id, ann_id=int(ann_id), image_id=image_id, category_id=obj.category_id,
                         split=split, sentences=sentences, sent_ids=[s['sent_id'] for s in sentences],
                         file_name=f'{stem}_{ann_id}.jpg'))
        ref_id += 1
    return refs


def reasonseg_record(scene: Scene, file_name: str, rng: np.random.Generator) -> Tuple[Dict, Dict]:
    """A LISA ReasonSeg labelme JSON (or ``None`` if no query has a unique answer) and its explanation.

    ``shapes`` holds the target's polygons labelled ``target``; with probability 0.3 another object is
    added as an ``ignore`` region (excluded from evaluation, as LISA's ignore labels are).
    """
    queries = reasoning_queries(scene)
    if not queries:
        return None, None
    targets = sorted({q['target'] for q in queries})
    target = targets[int(rng.integers(len(targets)))]
    chosen = [q for q in queries if q['target'] == target][:2]
    is_sentence = bool(rng.random() < 0.5)
    texts = [q['sentence'] if is_sentence else q['phrase'] for q in chosen]
    shapes = [dict(label='target', points=np.reshape(p, (-1, 2)).tolist(), group_id=None, shape_type='polygon',
                   flags={}) for p in mask_to_polygons(scene.objects[target].mask)]
    others = [i for i in range(len(scene.objects)) if i != target]
    if others and rng.random() < 0.3:
        j = others[int(rng.integers(len(others)))]
        shapes += [dict(label='ignore', points=np.reshape(p, (-1, 2)).tolist(), group_id=None,
                        shape_type='polygon', flags={}) for p in mask_to_polygons(scene.objects[j].mask)]
    record = dict(version='4.5.6', flags={}, shapes=shapes, imagePath=file_name, imageData=None,
                  imageHeight=scene.height, imageWidth=scene.width, text=texts, is_sentence=is_sentence)
    explanation = dict(image=file_name, query=texts[0], outputs=chosen[0]['explanation'])
    return record, explanation


def grandf_record(scene: Scene, stem: str, file_name: str) -> Dict:
    caption, groundings = grounded_caption(scene)
    return dict(image_id=stem, file_name=file_name, caption=caption, height=scene.height, width=scene.width,
                groundings={g['phrase']: dict(token_positives=g['span'], rle_masks=[encode_mask(g['mask'])])
                            for g in groundings})


def gcg_val_records(scene: Scene, stem: str, file_name: str, ann_id0: int) -> Tuple[Dict, List[Dict], Dict]:
    """``val_test`` ground truth: image entry (id = file stem), mask annotations, caption annotation."""
    caption, groundings = grounded_caption(scene)
    image = dict(id=stem, file_name=file_name, height=scene.height, width=scene.width)
    masks = [dict(id=ann_id0 + k, image_id=stem, category_id=1, segmentation=encode_mask(g['mask']),
                  area=float(g['mask'].sum()), bbox=mask_to_bbox(g['mask']), iscrowd=0)
             for k, g in enumerate(groundings)]
    return image, masks, dict(id=ann_id0, image_id=stem, caption=caption)


def vgd_record(scene: Scene, image_id: int, file_name: str, anns: List[Dict], prompt_masks: List[Dict]) -> Dict:
    """X-SAM COCO-VGD layout: the image's instance annotations, each with RLE ``visual_prompts``."""
    out = []
    for ann, prompts in zip(anns, prompt_masks):
        out.append(dict(ann, bbox_mode=1, visual_prompts=prompts))  # bbox_mode 1 = XYWH_ABS
    return dict(image_file=file_name, image_id=image_id, image_size=[scene.height, scene.width],
                annotations=out,
                image_info=dict(file_name=file_name, image_id=image_id, height=scene.height, width=scene.width))


def llava_records(scene: Scene, stem: str, file_name: str, rng: np.random.Generator,
                  add_text_only: bool) -> Tuple[Dict, List[Dict]]:
    """LLaVA-558K-style caption sample and LLaVA-665K-style conversation samples (+ a pure-text one)."""
    question = PRETRAIN_QUESTIONS[int(rng.integers(len(PRETRAIN_QUESTIONS)))]
    pretrain = dict(id=stem, image=file_name, conversations=[
        dict(value=f'<image>\n{question}', **{'from': 'human'}),
        dict(value=plain_caption(scene), **{'from': 'gpt'})])
    conv = []
    for k, (q, a) in enumerate(conversation_turns(scene, rng)):
        conv.append({'from': 'human', 'value': f'<image>\n{q}' if k == 0 else q})
        conv.append({'from': 'gpt', 'value': a})
    samples = [dict(id=stem, image=file_name, conversations=conv)]
    if add_text_only:
        text = []
        for q, a in text_only_turns(rng):
            text += [{'from': 'human', 'value': q}, {'from': 'gpt', 'value': a}]
        samples.append(dict(id=f'{stem}_text', conversations=text))
    return pretrain, samples


def meta_record(scene: Scene, image_id: int, file_name: str, ann_ids: Sequence[int]) -> Dict:
    return dict(
        image_id=image_id, file_name=file_name, height=scene.height, width=scene.width,
        stuff=[dict(category_id=s.category_id, name=clean_category_name(s.name), area=s.area) for s in scene.stuff],
        objects=[dict(ann_id=int(a), category_id=o.category_id, shape=o.shape, colour=o.colour, size=o.size,
                      hpos=o.hpos(scene.width), vpos=o.vpos(scene.height), area=o.area, bbox=mask_to_bbox(o.mask))
                 for a, o in zip(ann_ids, scene.objects)])

