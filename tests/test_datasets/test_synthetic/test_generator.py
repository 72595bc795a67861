"""The generator: determinism, parameter checks, re-use, and the files it writes."""
import hashlib
import json
import os
import os.path as osp

import pytest

from mmxsam.datasets.synthetic import ShapesConfig, generate_shapes_dataset


def _digest(root):
    h = {}
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if f == 'generation.json':
                continue
            p = osp.join(dirpath, f)
            with open(p, 'rb') as fh:
                h[osp.relpath(p, root)] = hashlib.sha1(fh.read()).hexdigest()
    return h


def test_same_config_writes_identical_files(tmp_path):
    cfg = ShapesConfig(num_train=6, num_val=3, seed=11)
    generate_shapes_dataset(str(tmp_path / 'a'), cfg, progress=False)
    generate_shapes_dataset(str(tmp_path / 'b'), cfg, progress=False)
    a, b = _digest(tmp_path / 'a'), _digest(tmp_path / 'b')
    assert a == b and len(a) > 30


def test_image_does_not_depend_on_split_size(tmp_path):
    generate_shapes_dataset(str(tmp_path / 'small'), ShapesConfig(num_train=2, num_val=1, seed=5), progress=False)
    generate_shapes_dataset(str(tmp_path / 'large'), ShapesConfig(num_train=5, num_val=1, seed=5), progress=False)
    small, large = _digest(tmp_path / 'small'), _digest(tmp_path / 'large')
    for name in ('images/shapes_train_000000.jpg', 'images/shapes_train_000001.jpg', 'images/shapes_val_000000.jpg'):
        assert small[name] == large[name]


def test_seed_changes_the_data(tmp_path):
    generate_shapes_dataset(str(tmp_path / 'a'), ShapesConfig(num_train=2, num_val=1, seed=0), progress=False)
    generate_shapes_dataset(str(tmp_path / 'b'), ShapesConfig(num_train=2, num_val=1, seed=1), progress=False)
    assert _digest(tmp_path / 'a')['images/shapes_train_000000.jpg'] != \
        _digest(tmp_path / 'b')['images/shapes_train_000000.jpg']


def test_reuse_and_force(tmp_path):
    out = str(tmp_path / 'd')
    first = generate_shapes_dataset(out, ShapesConfig(num_train=2, num_val=1), progress=False)
    assert first['reused'] is False
    assert generate_shapes_dataset(out, ShapesConfig(num_train=2, num_val=1), progress=False)['reused'] is True
    forced = generate_shapes_dataset(out, ShapesConfig(num_train=2, num_val=1), progress=False, force=True)
    assert forced['reused'] is False
    # a different config regenerates and removes the old files of the same layout
    generate_shapes_dataset(out, ShapesConfig(num_train=1, num_val=1), progress=False)
    assert not osp.exists(osp.join(out, 'images', 'shapes_train_000001.jpg'))


def test_summary_counts(shapes_root):
    with open(osp.join(shapes_root, 'generation.json')) as f:
        summary = json.load(f)
    assert summary['num_images'] == {'train': 24, 'val': 12}
    with open(osp.join(shapes_root, 'annotations', 'instances_train.json')) as f:
        assert len(json.load(f)['annotations']) == summary['num_instances']['train']


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_train=-1), 'num_train must be a non-negative integer'),
    (dict(num_train=0, num_val=0), 'nothing to generate'),
    (dict(image_size=16), 'image_size must be an integer in'),
    (dict(max_objects=20), 'max_objects must be in'),
    (dict(min_objects=4, max_objects=2), r'min_objects \(4\) must be <= max_objects \(2\)'),
    (dict(jpeg_quality=0), 'jpeg_quality'),
    (dict(num_val=1.5), 'num_val must be a non-negative integer'),
])
def test_rejects_impossible_parameters(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_shapes_dataset(str(tmp_path), ShapesConfig(**kwargs), progress=False)


def test_unknown_override_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"unknown ShapesConfig fields \['num_trian'\]"):
        generate_shapes_dataset(str(tmp_path), num_trian=3)


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / 'mine.txt').write_text('precious')
    with pytest.raises(FileExistsError, match='refusing to overwrite'):
        generate_shapes_dataset(str(tmp_path), ShapesConfig(num_train=1, num_val=1), progress=False)
    assert (tmp_path / 'mine.txt').read_text() == 'precious'


def test_overview_render(shapes_root, tmp_path):
    from mmxsam.datasets.synthetic.render import render_overview
    import cv2
    paths = render_overview(shapes_root, str(tmp_path), split='val', num=2)
    assert len(paths) == 2
    img = cv2.imread(paths[0])
    assert img is not None and img.shape[1] >= 4 * 256  # at least image, panoptic, GCG, VGD panels
