"""Bad inputs across the project: every case gives a clear error (naming the file, key or sample) or a
counted, logged skip.

Cases already tested next to their module are not repeated here; they are listed in ``COVERED_ELSEWHERE``
(and a test checks that those tests still exist), the inference API's among them.

Each data set is built from the stage-3 synthetic mix (``configs/_base_/datasets/shapes_mixed.py``) on the
session's ``shapes_root``, with one file swapped for a broken copy.
"""
import copy
import json
import logging
import os
import os.path as osp
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401  (registration)
from mmdet.registry import DATASETS, MODELS, TRANSFORMS

# ------------------------------------------------------------------------------------------ covered elsewhere
# (bad input, expected outcome, test) for cases that have their own test next to the module
COVERED_ELSEWHERE = [
    ('panoptic PNG missing', 'FileNotFoundError naming the PNG',
     'tests/test_datasets/test_generic_seg_dataset.py::test_missing_image_or_png_is_named_on_read'),
    ('panoptic PNG of the wrong size', 'ValueError naming both sizes',
     'tests/test_datasets/test_generic_seg_dataset.py::test_png_of_the_wrong_size'),
    ('panoptic segment with unknown category_id', 'ValueError naming image and segment / counted skip',
     'tests/test_datasets/test_generic_seg_dataset.py::test_unknown_category_raises_or_is_counted'),
    ('refer ref with an unknown ann_id / image_id, bad polygon, empty mask, no sentence',
     'ValueError naming the ref / counted, logged skip',
     'tests/test_datasets/test_refer_seg_dataset.py::test_bad_refs_raise_or_are_counted'),
    ('refer refs pickle that imports code', 'UnpicklingError',
     'tests/test_datasets/test_refer_seg_dataset.py::test_refs_pickle_is_read_without_running_code'),
    ('LLaVA sample with bad turns', 'ValueError naming the sample id',
     'tests/test_datasets/test_image_conv_dataset.py::test_invalid_samples_raise_naming_the_id_or_are_counted'),
    ('GCG record missing keys', 'ValueError naming the record',
     'tests/test_datasets/test_gcg_seg_dataset.py::test_malformed_files_raise'),
    ('ReasonSeg labelme JSON unreadable / no image / size mismatch / no target',
     'ValueError naming the file / counted skip',
     'tests/test_datasets/test_reason_seg_dataset.py::test_bad_files_raise_or_are_counted'),
    ('VGD annotation without visual prompt / undecodable segmentation', 'ValueError / counted skip',
     'tests/test_datasets/test_vgd_seg_dataset.py::test_bad_inputs'),
    ('unknown task (data set prompts)', 'KeyError listing the known tasks',
     'tests/test_datasets/test_prompts/test_task_prompts.py::test_get_unknown_lists_known'),
    ('RLE of the wrong size / empty instance mask / empty visual prompt', 'ValueError naming img_id',
     'tests/test_datasets/test_transforms/test_xsam_pipeline.py::test_bad_records_are_named'),
    ('unknown task (model)', 'ValueError naming the image and task',
     'tests/test_models/test_utils/test_seg_items.py::test_unknown_task_always_raises'),
    ('<SEG> count does not match the phrases', 'ValueError naming the image and task',
     'tests/test_models/test_utils/test_seg_items.py::test_bad_counts_raise_in_training'),
    ('<region> without a prompt mask; empty prompt mask; refseg without <p>', 'ValueError naming the sample',
     'tests/test_models/test_detectors/test_xsam.py::test_errors_name_the_sample'),
    ('two <image> placeholders', 'ValueError naming the image',
     'tests/test_models/test_utils/test_multimodal_inputs.py::test_two_images_is_an_error'),
    ('<region> count does not match the region features', 'ValueError naming the image and both counts',
     'tests/test_models/test_utils/test_multimodal_inputs.py::test_region_count_mismatch_is_an_error'),
    ('<SEG> in an image-conversation sample', 'ValueError naming the image and task',
     'tests/test_models/test_utils/test_seg_items.py::test_seg_in_text_task_always_raises'),
    ('over-long sequence after the visual tokens', 'ValueError naming the image and the context length',
     'tests/test_models/test_utils/test_multimodal_inputs.py::test_over_long_sequence_is_an_error'),
    ('frozen_modules naming a module that does not exist', 'ValueError naming it',
     'tests/test_models/test_detectors/test_xsam.py::test_constructor_checks'),
    ('checkpoint with unsafe pickle globals', 'unsafe_globals_in lists them; torch.load refuses',
     'tests/test_utils/test_safe_load.py::test_arbitrary_code_is_still_refused'),
    ('tools: config file not found, --resume checkpoint not found', 'FileNotFoundError naming the path',
     'tests/test_utils/test_cli.py'),
    ('inferencer: unknown task / request key, empty prompt or category, prompt outside the image, prompt for a '
     'task without prompts, answer without <SEG>', 'ValueError naming the request (and prompt)',
     'tests/test_apis/test_xsam_inferencer.py::test_bad_requests'),
    ('inferencer: missing or unreadable image, image array of the wrong kind', 'ValueError naming the request',
     'tests/test_apis/test_xsam_inferencer.py::test_bad_images'),
    ('inferencer: checkpoint of another config (shapes, missing / unexpected keys), not an X-SAM config',
     'ValueError naming the keys', 'tests/test_apis/test_xsam_inferencer.py::test_checkpoint_config_mismatch'),
    ('visual prompt spec: unknown type, bad coordinates, no area, mask of another size, empty',
     'ValueError naming the prompt', 'tests/test_apis/test_visual_prompt_specs.py::test_bad_specs_name_the_prompt'),
]

MIX = 'configs/_base_/datasets/shapes_mixed.py'


@pytest.fixture(scope='module')
def sources(repo_root):
    init_default_scope('mmdet')
    return {d.type: d for d in Config.fromfile(osp.join(repo_root, MIX)).train_sources}


@pytest.fixture
def data(shapes_root, tmp_path):
    """A private copy of the synthetic data set (the session one is shared read-only)."""
    root = str(tmp_path / 'shapes')
    shutil.copytree(shapes_root, root, ignore=shutil.ignore_patterns('*.jpg', '*.png', 'tokenizer'))
    return root


def _build(sources, dataset_type, root, **overrides):
    cfg = copy.deepcopy(sources[dataset_type])
    cfg.update(data_root=root, pipeline=[], **overrides)
    return DATASETS.build(cfg)


def _edit_json(path, fn):
    with open(path) as f:
        data = json.load(f)
    data = fn(data)
    with open(path, 'w') as f:
        json.dump(data, f)


def _first(key):
    """Drop ``key`` from the first record of a list file."""
    def fn(data):
        data[0].pop(key)
        return data
    return fn


def _pop_top(key):
    def fn(data):
        data.pop(key)
        return data
    return fn


def _pop_first_of(list_key, key):
    def fn(data):
        data[list_key][0].pop(key)
        return data
    return fn


# ----------------------------------------------------------------------------------------- annotation files
# (data set type, config key of the file): every JSON annotation file each data set reads
ANN_FILES = [
    ('XSAMImageConvDataset', 'ann_file'),
    ('XSAMGenericSegDataset', 'ann_file'),
    ('XSAMReferSegDataset', 'ann_file'),
    ('XSAMReasonSegDataset', 'explain_file'),
    ('XSAMGCGSegDataset', 'ann_file'),
    ('XSAMVGDSegDataset', 'ann_file'),
]


@pytest.mark.parametrize('dataset_type, key', ANN_FILES)
def test_missing_annotation_file_names_path_and_key(sources, data, dataset_type, key):
    with pytest.raises(FileNotFoundError) as err:
        _build(sources, dataset_type, data, **{key: 'no/such/file.json'})
    msg = str(err.value)
    assert osp.join(data, 'no/such/file.json') in msg and f'`{key}`' in msg


@pytest.mark.parametrize('dataset_type, key', ANN_FILES)
def test_malformed_json_names_file_and_position(sources, data, dataset_type, key):
    bad = osp.join(data, 'broken.json')
    with open(bad, 'w') as f:
        f.write('[{"id": 1,\n  "conversations": [}]')
    with pytest.raises(ValueError, match=re.escape(bad) + r': .*not valid JSON \(.* line 2 column \d+\)'):
        _build(sources, dataset_type, data, **{key: 'broken.json'})


@pytest.mark.parametrize('dataset_type, key, top, message', [
    ('XSAMImageConvDataset', 'ann_file', {}, 'holds a list of samples, got dict'),
    ('XSAMGenericSegDataset', 'ann_file', [], 'must be a dict, got list'),
    ('XSAMReferSegDataset', 'ann_file', [], 'must be a dict, got list'),
    ('XSAMReasonSegDataset', 'explain_file', {}, 'must be a list, got dict'),
    ('XSAMGCGSegDataset', 'ann_file', {}, 'holds a list of records, got dict'),
    ('XSAMVGDSegDataset', 'ann_file', {}, 'expected a list of image records'),
])
def test_wrong_top_level_names_the_file(sources, data, dataset_type, key, top, message):
    bad = osp.join(data, 'top.json')
    with open(bad, 'w') as f:
        json.dump(top, f)
    with pytest.raises((ValueError, TypeError), match=re.escape(bad) + '.*' + message):
        _build(sources, dataset_type, data, **{key: 'top.json'})


# (data set type, file under the data root, edit, expected message after the file's path)
MISSING_KEYS = [
    ('XSAMGenericSegDataset', 'annotations/panoptic_train.json', _pop_top('annotations'),
     r': a COCO panoptic JSON needs the "annotations" list'),
    ('XSAMReferSegDataset', 'refshapes/instances.json', _pop_top('images'),
     r" \(COCO instances JSON\): missing key\(s\) \['images'\]"),
    ('XSAMReferSegDataset', 'refshapes/instances.json', _pop_first_of('annotations', 'segmentation'),
     r": annotations\[0\]: missing key\(s\) \['segmentation'\]"),
    ('XSAMReferSegDataset', 'refshapes/instances.json', _pop_first_of('images', 'height'),
     r": images\[0\]: missing key\(s\) \['height'\]"),
    ('XSAMReasonSegDataset', 'reason_seg/explanatory/train.json', _first('image'),
     r": item #0: missing key\(s\) \['image'\]"),
    ('XSAMVGDSegDataset', 'vgd/vgd_train.json', _first('image_size'),
     r": record #0: missing key\(s\) \['image_size'\]"),
    ('XSAMVGDSegDataset', 'vgd/vgd_train.json', _first('image_file'),
     r": record #0: missing key\(s\) \['image_file'\]"),
]


@pytest.mark.parametrize('dataset_type, rel, edit, message', MISSING_KEYS,
                         ids=[f'{t}-{m.split("[")[-1]}' for t, _, _, m in MISSING_KEYS])
def test_missing_keys_name_file_record_and_key(sources, data, dataset_type, rel, edit, message):
    path = osp.join(data, rel)
    _edit_json(path, edit)
    with pytest.raises(ValueError, match=re.escape(path) + message):
        _build(sources, dataset_type, data)


def test_vgd_image_size_of_the_wrong_shape(sources, data):
    path = osp.join(data, 'vgd/vgd_train.json')

    def edit(records):
        records[0]['image_size'] = 128
        return records

    _edit_json(path, edit)
    with pytest.raises(ValueError, match=re.escape(path) + r': record #0 \(image .*\): image_size must be '
                       r'\[height, width\], got 128'):
        _build(sources, 'XSAMVGDSegDataset', data)


def test_vgd_category_file_without_categories(sources, data):
    cats = osp.join(data, 'cats.json')
    with open(cats, 'w') as f:
        json.dump(dict(images=[]), f)
    with pytest.raises(ValueError, match=re.escape(cats) + r" \(category_file\): missing key\(s\) \['categories'\]"):
        _build(sources, 'XSAMVGDSegDataset', data, category_file='cats.json')
    with pytest.raises(FileNotFoundError, match='`category_file`'):
        _build(sources, 'XSAMVGDSegDataset', data, category_file='nope.json')


def test_refer_refs_file_missing_or_truncated(sources, data):
    with pytest.raises(FileNotFoundError, match=re.escape(osp.join(data, 'nope.p')) + '.*`refer_file`'):
        _build(sources, 'XSAMReferSegDataset', data, refer_file='nope.p')
    path = osp.join(data, 'refshapes/refs(unc).p')
    with open(path, 'rb') as f:
        payload = f.read()
    with open(path, 'wb') as f:
        f.write(payload[:len(payload) // 2])
    with pytest.raises(ValueError, match=re.escape(path) + ': not a readable refer refs pickle'):
        _build(sources, 'XSAMReferSegDataset', data)


def test_refer_ref_without_ann_id(sources, data):
    path = osp.join(data, 'refshapes/refs(unc).p')
    with open(path, 'rb') as f:
        refs = pickle.load(f)
    train = next(k for k, r in enumerate(refs) if r['split'] == 'train')
    del refs[train]['ann_id']
    with open(path, 'wb') as f:
        pickle.dump(refs, f)
    with pytest.raises(ValueError, match=re.escape(path) + rf": ref #\d+ \(ref_id={refs[train]['ref_id']}\): "
                       r"missing key\(s\) \['ann_id'\]"):
        _build(sources, 'XSAMReferSegDataset', data)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))


def test_skips_are_counted_and_logged(sources, data):
    """A ref pointing at an unknown annotation and a VGD annotation without category: with skip_invalid=True
    they are dropped, counted per reason and reported in a warning of the current logger."""
    refs_path = osp.join(data, 'refshapes/refs(unc).p')
    with open(refs_path, 'rb') as f:
        refs = pickle.load(f)
    train = next(k for k, r in enumerate(refs) if r['split'] == 'train')
    refs[train]['ann_id'] = 10 ** 9
    with open(refs_path, 'wb') as f:
        pickle.dump(refs, f)
    vgd_path = osp.join(data, 'vgd/vgd_train.json')

    def drop_category(records):
        records[0]['annotations'][0].pop('category_id')
        return records

    _edit_json(vgd_path, drop_category)
    with pytest.raises(ValueError, match=r'ann_id=1000000000.*not in the annotations'):
        _build(sources, 'XSAMReferSegDataset', data)
    with pytest.raises(ValueError, match=r'record|annotation .*: no category_id'):
        _build(sources, 'XSAMVGDSegDataset', data)

    handler = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        refer = _build(sources, 'XSAMReferSegDataset', data, skip_invalid=True)
        vgd = _build(sources, 'XSAMVGDSegDataset', data, skip_invalid=True)
    finally:
        logger.removeHandler(handler)
    assert refer.skip_counts['missing_ann'] == 1 and sum(refer.skip_counts.values()) == 1
    assert vgd.skip_counts['invalid_annotation'] == 1
    warnings = [m for level, m in handler.messages if level >= logging.WARNING]
    assert any("'missing_ann': 1" in m for m in warnings), handler.messages
    assert any("'invalid_annotation': 1" in m for m in warnings), handler.messages


# ------------------------------------------------------------------------------------------------ pipeline
def _pack(tokenizer_dir, max_length=None):
    return TRANSFORMS.build(dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tokenizer_dir),
                                 chat_template='phi3', max_length=max_length))


def _chat_record(question):
    return dict(img_path='data/x/pic_7.jpg', img_id=7, img=np.zeros((16, 16, 3), np.uint8), img_shape=(16, 16),
                ori_shape=(16, 16), task='refseg', phrases=['red circle'],
                conversations=[dict(value='<image>\n' + question, **{'from': 'human'}),
                               dict(value='It is <p>red circle</p> <SEG>.', **{'from': 'gpt'})])


def test_pack_conversation_that_cannot_fit_names_the_sample(tiny_tokenizer_dir):
    record = _chat_record('Please segment <p>red circle</p>.')
    ok = _pack(tiny_tokenizer_dir)(copy.deepcopy(record))
    n = len(ok['data_samples'].input_ids)
    with pytest.raises(ValueError, match=r'data/x/pic_7\.jpg \(img_id=7\): conversation has \d+ tokens but '
                       r'max_length=3'):
        _pack(tiny_tokenizer_dir, max_length=3)(copy.deepcopy(record))
    cut = _pack(tiny_tokenizer_dir, max_length=n - 1)(copy.deepcopy(record))  # cut: counted, not an error
    assert cut['data_samples'].metainfo['num_truncated'] == 1 and len(cut['data_samples'].input_ids) == n - 1


def test_pack_placeholder_in_answer_names_the_sample(tiny_tokenizer_dir):
    record = _chat_record('Segment it.')
    record['conversations'][1]['value'] = 'Here: <image> <SEG>'
    with pytest.raises(ValueError, match=r'pic_7\.jpg \(img_id=7\): turns\[0\]\[1\] \(assistant text\) contains '
                       'a placeholder'):
        _pack(tiny_tokenizer_dir)(record)


def test_pack_without_conversations_names_the_sample(tiny_tokenizer_dir):
    record = _chat_record('x')
    record.pop('conversations')
    with pytest.raises(KeyError, match=r'pic_7\.jpg \(img_id=7\): PackXSAMInputs needs `conversations`'):
        _pack(tiny_tokenizer_dir)(record)


# -------------------------------------------------------------------------------------------------- configs
def test_unknown_registry_type_is_named():
    init_default_scope('mmdet')
    with pytest.raises(KeyError, match='XSAMSegConector is not in the mmdet::model registry'):
        MODELS.build(dict(type='XSAMSegConector', in_channels=16, hidden_channels=8, out_channels=[8, 16, 32]))
    with pytest.raises(KeyError, match='XSAMReferSegDatset is not in the mmdet::dataset registry'):
        DATASETS.build(dict(type='XSAMReferSegDatset'))


def test_misspelt_arguments_are_refused(sources, data):
    """A typo in a config key is an error, not a silently ignored keyword (official issue #29: num_sample)."""
    with pytest.raises(TypeError, match="XSAMSegConnector.*unexpected keyword argument 'in_channel'"):
        MODELS.build(dict(type='XSAMSegConnector', in_channel=16, hidden_channels=8, out_channels=[8, 16, 32]))
    with pytest.raises(TypeError, match=r"XSAMVGDSegDataset \(source 'shapes_vgd'\): unknown argument\(s\) "
                       r"\['num_sample'\]"):
        _build(sources, 'XSAMVGDSegDataset', data, num_sample=3, source_name='shapes_vgd')


# ----------------------------------------------------------------------------------------------- checkpoints
class _Payload:
    """Unpickling this would create ``marker`` (the stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker, ))


def test_unsafe_checkpoint_is_refused_by_load_from_and_pretrained(tmp_path):
    """The paths a config loads weights through (``load_from`` / ``init_cfg=Pretrained`` both end in mmengine's
    ``load_checkpoint``) refuse a checkpoint with code in it, and run none of it."""
    from mmengine.runner import load_checkpoint
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil.pth')
    model = MODELS.build(dict(type='XSAMSegConnector', in_channels=4, hidden_channels=4, out_channels=[2, 4, 8]))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note=_Payload(marker))), path)
    from mmxsam.utils import unsafe_globals_in
    assert unsafe_globals_in(path) == ['os.makedirs']
    with pytest.raises(pickle.UnpicklingError, match='os.makedirs'):
        load_checkpoint(model, path, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError, match='os.makedirs'):
        init = MODELS.build(dict(type='XSAMSegConnector', in_channels=4, hidden_channels=4, out_channels=[2, 4, 8],
                                 init_cfg=dict(type='Pretrained', checkpoint=path)))
        init.init_weights()
    assert not osp.exists(marker)


# ------------------------------------------------------------------------------------------------ inventory
def test_covered_elsewhere_tests_exist(repo_root):
    """Every case listed as covered elsewhere points at a test that exists."""
    for case, outcome, where in COVERED_ELSEWHERE:
        path, _, name = where.partition('::')
        assert osp.isfile(osp.join(repo_root, path)), (case, path)
        if name:
            with open(osp.join(repo_root, path)) as f:
                assert re.search(rf'^def {re.escape(name)}\(', f.read(), re.M), (case, where)
