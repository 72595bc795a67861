"""Overview pictures of the synthetic data: one row of panels per image, one panel per task format.

Panels: the image; COCO panoptic (thing/stuff colours); referring (the first expression's mask, from the
refer layout); ReasonSeg (labelme target in green, ignore in grey); GCG (each grounded phrase in its own
colour); COCO-VGD (point, scribble and box prompts of the first instance over its mask). Everything is
read back from the written files, so the picture shows what a reader would get.
"""
import json
import os
import os.path as osp
import pickle
from typing import List

import cv2
import numpy as np

from ..utils.mask_codec import decode_mask
from .constants import PALETTE

_PHRASE_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                   (70, 240, 240), (240, 50, 230)]


def _overlay(img: np.ndarray, mask: np.ndarray, colour, alpha: float = 0.55) -> np.ndarray:
    out = img.copy()
    out[mask] = (alpha * np.array(colour) + (1 - alpha) * out[mask]).astype(np.uint8)
    return out


def _panel(img: np.ndarray, title: str, size: int, lines: List[str] = ()) -> np.ndarray:
    """Upscale ``img`` (RGB) to ``size`` and add a title above and wrapped text lines below."""
    body = cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)
    wrapped: List[str] = []
    for line in lines:
        words, cur = line.split(), ''
        for w in words:
            if len(cur) + len(w) + 1 > size // 7:
                wrapped.append(cur)
                cur = w
            else:
                cur = f'{cur} {w}'.strip()
        if cur:
            wrapped.append(cur)
    head = np.full((18, size, 3), 255, np.uint8)
    cv2.putText(head, title, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    foot = np.full((14 * 4 + 4, size, 3), 255, np.uint8)
    for k, line in enumerate(wrapped[:4]):
        cv2.putText(foot, line, (3, 13 + 14 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([head, body, foot], axis=0)


def render_overview(data_root: str, out_dir: str, split: str = 'val', num: int = 4, panel_size: int = 256) -> List[str]:
    """Write ``num`` overview PNGs for ``split`` to ``out_dir``; returns their paths."""
    def load(*parts):
        with open(osp.join(data_root, *parts)) as f:
            return json.load(f)

    pan = load('annotations', f'panoptic_{split}.json')
    vgd = {r['image_id']: r for r in load('vgd', f'vgd_{split}.json')}
    grandf = {r['file_name']: r for r in load('gcg', f'grandf_gcg_{split}.json')}
    with open(osp.join(data_root, 'refshapes', 'refs(unc).p'), 'rb') as f:
        refs = pickle.load(f)
    refer = load('refshapes', 'instances.json')
    refer_anns = {a['id']: a for a in refer['annotations']}
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for img_info, pan_ann in list(zip(pan['images'], pan['annotations']))[:num]:
        h, w = img_info['height'], img_info['width']
        image = cv2.imread(osp.join(data_root, 'images', img_info['file_name']))[..., ::-1]
        panels = [_panel(image, img_info['file_name'], panel_size)]

        png = cv2.imread(osp.join(data_root, 'annotations', f'panoptic_{split}', pan_ann['file_name']))[..., ::-1]
        png = png.astype(np.int64)
        ids = png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]
        vis = image.copy()
        for seg in pan_ann['segments_info']:
            vis = _overlay(vis, ids == seg['id'], PALETTE[seg['category_id']], 0.7)
        panels.append(_panel(vis, 'panoptic', panel_size))

        img_refs = [r for r in refs if r['image_id'] == img_info['id']]
        if img_refs:
            ref = img_refs[0]
            mask = decode_mask(refer_anns[ref['ann_id']]['segmentation'], h, w)
            panels.append(_panel(_overlay(image, mask, (255, 0, 0)), 'referring', panel_size,
                                 [s['sent'] for s in ref['sentences']]))

        rs_path = osp.join(data_root, 'reason_seg', split, img_info['file_name'].replace('.jpg', '.json'))
        if osp.exists(rs_path):
            with open(rs_path) as f:
                rs = json.load(f)
            vis = image.copy()
            for shape in rs['shapes']:
                m = np.zeros((h, w), np.uint8)
                cv2.fillPoly(m, [np.round(np.array(shape['points']) - 0.5).astype(np.int32)], 1)
                vis = _overlay(vis, m.astype(bool), (0, 200, 0) if shape['label'] == 'target' else (128, 128, 128))
            panels.append(_panel(vis, 'reasoning', panel_size, rs['text']))

        g = grandf[img_info['file_name']]
        vis = image.copy()
        for k, item in enumerate(g['groundings'].values()):
            vis = _overlay(vis, decode_mask(item['rle_masks'], h, w), _PHRASE_COLOURS[k % len(_PHRASE_COLOURS)])
        panels.append(_panel(vis, 'GCG', panel_size, [g['caption']]))

        anns = vgd[img_info['id']]['annotations']
        if anns:
            a = anns[0]
            vis = _overlay(image, decode_mask(a['segmentation'], h, w), (255, 255, 255), 0.35)
            for key, colour in (('box_visual_prompt', (0, 0, 255)), ('scribble_visual_prompt', (255, 0, 255)),
                                ('point_visual_prompt', (255, 0, 0))):
                alpha = 0.3 if key == 'box_visual_prompt' else 0.6
                vis = _overlay(vis, decode_mask(a['visual_prompts'][key], h, w), colour, alpha)
            panels.append(_panel(vis, 'VGD prompts', panel_size, ['box (blue), scribble (magenta), point (red)']))

        row = np.concatenate(panels, axis=1)
        path = osp.join(out_dir, f'overview_{osp.splitext(img_info["file_name"])[0]}.png')
        cv2.imwrite(path, row[..., ::-1])
        paths.append(path)
    return paths
