"""generate_coco_vgd.py / build_vgd_records: COCO instances -> COCO-VGD records with four visual prompts."""
import copy
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from pycocotools.coco import COCO
from scipy import ndimage

from mmxsam.datasets.utils import decode_mask, encode_mask
from mmxsam.datasets.utils.coco_vgd import COUNT_KEYS, build_vgd_records
from mmxsam.datasets.utils.visual_prompts import PROMPT_TYPES, scale_prompt_params

KEYS = [f'{t}_visual_prompt' for t in PROMPT_TYPES]


def _coco(dataset):
    coco = COCO()
    coco.dataset = copy.deepcopy(dataset)
    coco.createIndex()
    return coco


@pytest.fixture(scope='module')
def instances(shapes_root):
    with open(osp.join(shapes_root, 'annotations', 'instances_val.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def records(instances):
    counts = {}
    recs = build_vgd_records(_coco(instances), seed=0, prompt_params='scale_to_image', counts=counts)
    return recs, counts


def test_layout_and_counts(records, instances):
    recs, counts = records
    assert set(counts) == set(COUNT_KEYS)
    assert counts['images'] == counts['images_written'] == len(instances['images']) == len(recs)
    assert counts['instances'] == len(instances['annotations'])
    assert counts['crowd'] == counts['invalid_polygon'] == counts['empty_mask'] == 0
    anns = {a['id']: a for a in instances['annotations']}
    for rec, img in zip(recs, instances['images']):
        assert set(rec) == {'image_file', 'image_id', 'image_size', 'annotations', 'image_info'}
        assert rec['image_file'] == img['file_name'] and rec['image_id'] == img['id']
        assert rec['image_size'] == [img['height'], img['width']]
        assert rec['image_info'] == dict(file_name=img['file_name'], image_id=img['id'], height=img['height'],
                                         width=img['width'])
        for ann in rec['annotations']:
            assert ann['bbox_mode'] == 1 and set(ann['visual_prompts']) == set(KEYS)
            assert {k: v for k, v in ann.items() if k not in ('bbox_mode', 'visual_prompts')} == anns[ann['id']]
            assert all(p['size'] == rec['image_size'] and isinstance(p['counts'], str)
                       for p in ann['visual_prompts'].values())
    json.dumps(recs)  # JSON-ready


def test_prompts_lie_in_and_around_their_instance(records):
    recs, _ = records
    for rec in recs:
        h, w = rec['image_size']
        radius = scale_prompt_params((h, w))['point_radius']
        for ann in rec['annotations']:
            mask = decode_mask(ann['segmentation'], h, w)
            vp = {k: decode_mask(v, h, w) for k, v in ann['visual_prompts'].items()}
            assert all(v.any() for v in vp.values())
            blobs, n = ndimage.label(vp['point_visual_prompt'])
            for k in range(1, n + 1):  # each disc is centred on a pixel of the mask
                ys, xs = np.nonzero(blobs == k)
                assert (ys.max() - ys.min()) <= 2 * radius and (xs.max() - xs.min()) <= 2 * radius
                cy, cx = ndimage.center_of_mass(blobs == k)
                assert mask[int(round(cy)), int(round(cx))]
            assert (vp['box_visual_prompt'] & mask).sum() >= 0.6 * mask.sum()
            ys, xs = np.nonzero(mask)
            assert vp['scribble_visual_prompt'][ys.min():ys.max() + 1, xs.min():xs.max() + 1].any()
            # blurred and thresholded at the image mean: a slightly grown copy of the mask
            assert (vp['mask_visual_prompt'] & mask).sum() >= 0.95 * mask.sum()


def test_reproducible_and_independent_of_workers(records, instances):
    recs, _ = records
    again = build_vgd_records(_coco(instances), seed=0, prompt_params='scale_to_image')
    two = build_vgd_records(_coco(instances), seed=0, prompt_params='scale_to_image', workers=2)
    assert again == recs and two == recs
    other = build_vgd_records(_coco(instances), seed=1, prompt_params='scale_to_image')
    assert other != recs
    # default: the reference sizes (10 px point discs), not scaled to the 128 px images
    ref = build_vgd_records(_coco(instances), seed=0)
    h, w = recs[0]['image_size']
    assert (decode_mask(ref[0]['annotations'][0]['visual_prompts']['point_visual_prompt'], h, w).sum()
            > decode_mask(recs[0]['annotations'][0]['visual_prompts']['point_visual_prompt'], h, w).sum())


def test_crowd_and_invalid_annotations_are_counted(instances):
    data = copy.deepcopy(instances)
    img = data['images'][0]
    h, w = img['height'], img['width']
    first = next(a for a in data['annotations'] if a['image_id'] == img['id'])
    nid = max(a['id'] for a in data['annotations']) + 1
    square = [10.0, 10.0, 40.0, 10.0, 40.0, 40.0, 10.0, 40.0]
    crowd_mask = np.zeros((h, w), np.uint8)
    crowd_mask[50:60, 50:60] = 1
    from pycocotools import mask as mask_utils
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd_mask))
    uncompressed = dict(size=[h, w], counts=[int(v) for v in
                                             _rle_counts(crowd_mask)])  # COCO crowd layout
    assert decode_mask(uncompressed, h, w).sum() == mask_utils.area(crowd_rle)
    extra_img = dict(id=999999, file_name='only_crowd.jpg', height=h, width=w)
    data['images'].append(extra_img)
    base = dict(category_id=first['category_id'], area=1.0, bbox=[0, 0, 1, 1])
    data['annotations'] += [
        dict(base, id=nid, image_id=img['id'], segmentation=uncompressed, iscrowd=1),
        dict(base, id=nid + 1, image_id=img['id'], segmentation=[[1.0, 1.0, 5.0, 5.0]], iscrowd=0),
        dict(base, id=nid + 2, image_id=img['id'], segmentation=[square, [1.0, 2.0]], iscrowd=0),
        dict(base, id=nid + 3, image_id=img['id'], segmentation=encode_mask(np.zeros((h, w), np.uint8)), iscrowd=0),
        dict(base, id=nid + 4, image_id=img['id'], segmentation=encode_mask(np.ones((h + 1, w), np.uint8)),
             iscrowd=0),
        dict(base, id=nid + 5, image_id=extra_img['id'], segmentation=uncompressed, iscrowd=1),
    ]
    counts = {}
    recs = build_vgd_records(_coco(data), seed=0, prompt_params='scale_to_image', counts=counts)
    assert counts['crowd'] == 2 and counts['invalid_polygon'] == 1 and counts['dropped_polygons'] == 1
    assert counts['empty_mask'] == 1 and counts['invalid_segmentation'] == 1
    assert counts['images'] == len(data['images']) and counts['images_without_instances'] == 1
    assert counts['instances'] == len(instances['annotations']) + 1
    assert 999999 not in {r['image_id'] for r in recs}
    kept = {a['id']: a for r in recs for a in r['annotations']}
    assert kept[nid + 2]['segmentation'] == [square]
    assert not {nid, nid + 1, nid + 3, nid + 4} & set(kept)
    # other images are unaffected (per-image seeds)
    clean = build_vgd_records(_coco(instances), seed=0, prompt_params='scale_to_image')
    assert recs[1:] == clean[1:]


def _rle_counts(mask):
    flat = mask.flatten(order='F')
    counts, prev, run = [], 0, 0
    for v in flat:
        if v != prev:
            counts.append(run)
            prev, run = v, 0
        run += 1
    counts.append(run)
    return counts


def test_cli(repo_root, shapes_root, records, tmp_path):
    out = str(tmp_path / 'sub' / 'vgd.json')
    proc = subprocess.run([sys.executable, 'tools/dataset_converters/generate_coco_vgd.py',
                           osp.join(shapes_root, 'annotations', 'instances_val.json'), out, '--seed', '0',
                           '--workers', '2', '--scale-to-image', '--no-progress'], cwd=repo_root,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs, counts = records
    assert f"{counts['images_written']} images, {counts['instances']} instances" in proc.stdout
    with open(out) as f:
        assert json.load(f) == json.loads(json.dumps(recs))
