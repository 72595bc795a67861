"""XSAMImageConvDataset: LLaVA chats kept as written, <image> at the front, pure text kept, bad turns refused."""
import json
import os.path as osp

import pytest
from mmdet.registry import DATASETS

from mmxsam.datasets import XSAMImageConvDataset


def _write(tmp_path, samples, name='llava.json'):
    path = tmp_path / name
    path.write_text(json.dumps(samples))
    return str(path)


def _human(v):
    return {'from': 'human', 'value': v}


def _gpt(v):
    return {'from': 'gpt', 'value': v}


HAND_WRITTEN = [
    # LLaVA-558K style: <image> at the end of the question
    dict(id='img_end', image='000001.jpg',
         conversations=[_human('Describe the image concisely.\n<image>'), _gpt('A cat on a mat.')]),
    # pure text (LLaVA-665K has ~40K of these)
    dict(id='text_only', conversations=[_human('What is 2 + 2?'), _gpt('4.'), _human('And 3 + 3?'), _gpt('6.')]),
    # starts with a gpt turn: dropped, as the official map fn
    dict(id='gpt_first', image='sub/000002.jpg',
         conversations=[_gpt('Hello!'), _human('<image>\nWhat colour is the car?'), _gpt('Red.'),
                        _human('Is it moving?'), _gpt('No.')]),
]


def test_hand_written_llava(tmp_path):
    ds = XSAMImageConvDataset(ann_file=_write(tmp_path, HAND_WRITTEN), data_prefix=dict(img_path='imgs'),
                              serialize_data=False)
    assert len(ds) == 3
    assert ds.stats['pure_text'] == 1 and ds.stats['leading_gpt_dropped'] == 1 and ds.stats['image_token_moved'] == 1

    a = ds[0]
    assert a['img_path'] == osp.join('imgs', '000001.jpg') and a['img_id'] == 'img_end'
    assert a['task'] == 'imgconv' and a['instances'] == [] and a['phrases'] == []
    assert a['conversations'] == [_human('<image>\nDescribe the image concisely.'), _gpt('A cat on a mat.')]

    b = ds[1]
    assert b['img_path'] is None
    assert b['conversations'] == HAND_WRITTEN[1]['conversations']  # untouched
    assert not any('<image>' in t['value'] for t in b['conversations'])

    c = ds[2]
    assert c['img_path'] == osp.join('imgs', 'sub', '000002.jpg')
    assert [t['from'] for t in c['conversations']] == ['human', 'gpt', 'human', 'gpt']
    assert c['conversations'][0]['value'] == '<image>\nWhat colour is the car?'
    assert c['conversations'][1:] == HAND_WRITTEN[2]['conversations'][2:]


def test_image_token_goes_to_the_front_of_the_first_turn(tmp_path):
    samples = [dict(id='late', image='x.jpg', conversations=[_human('  Hi  '), _gpt('Hello.'),
                                                             _human('What is this? <image>'), _gpt('A dog.')]),
               dict(id='none', image='y.jpg', conversations=[_human('Caption?'), _gpt('A dog.')])]
    ds = XSAMImageConvDataset(ann_file=_write(tmp_path, samples), serialize_data=False)
    late, none = ds[0]['conversations'], ds[1]['conversations']
    assert late[0]['value'] == '<image>\nHi' and late[2]['value'] == 'What is this?'
    assert none[0]['value'] == '<image>\nCaption?'
    assert sum(t['value'].count('<image>') for t in late) == 1


def test_conversation_is_fixed_data_in_both_modes(tmp_path):
    path = _write(tmp_path, HAND_WRITTEN)
    train = XSAMImageConvDataset(ann_file=path, serialize_data=False)
    test = XSAMImageConvDataset(ann_file=path, test_mode=True)
    for i in range(3):
        assert train[i]['conversations'] == train[i]['conversations'] == test[i]['conversations']


@pytest.mark.parametrize('sample,match', [
    (dict(id='two_humans', conversations=[_human('a'), _human('b'), _gpt('c')]), 'alternate'),
    (dict(id='ends_human', conversations=[_human('a'), _gpt('b'), _human('c')]), 'alternate'),
    (dict(id='bad_role', conversations=[_human('a'), {'from': 'system', 'value': 'b'}]), 'alternate'),
    (dict(id='only_gpt', conversations=[_gpt('a')]), 'no human turn'),
    (dict(id='no_value', conversations=[_human('a'), {'from': 'gpt'}]), 'str "value"'),
    (dict(id='ghost_image', conversations=[_human('<image>\nWhat is it?'), _gpt('A dog.')]), 'has no image'),
    (dict(id='image_answer', image='a.jpg', conversations=[_human('<image>\nq'), _gpt('see <image>')]),
     'answer 0 contains'),
])
def test_invalid_samples_raise_naming_the_id_or_are_counted(tmp_path, sample, match):
    path = _write(tmp_path, HAND_WRITTEN + [sample])
    with pytest.raises(ValueError, match=match) as err:
        XSAMImageConvDataset(ann_file=path)
    assert repr(sample['id']) in str(err.value) and 'skip_invalid=True' in str(err.value)
    ds = XSAMImageConvDataset(ann_file=path, skip_invalid=True)
    assert len(ds) == 3 and sum(ds.skip_counts.values()) == 1


def test_not_a_list(tmp_path):
    with pytest.raises(TypeError, match='holds a list of samples'):
        XSAMImageConvDataset(ann_file=_write(tmp_path, dict(id=1)))


def test_shapes_conversations_and_pretrain(shapes_root):
    cfg = dict(type='XSAMImageConvDataset', data_root=shapes_root, data_prefix=dict(img_path='images/'))
    conv = DATASETS.build(dict(cfg, ann_file='llava/conversations_train.json'))
    raw = json.load(open(osp.join(shapes_root, 'llava', 'conversations_train.json')))
    assert len(conv) == len(raw)
    n_text = sum('image' not in s for s in raw)
    assert n_text > 0 and conv.stats['pure_text'] == n_text
    for i in range(len(conv)):
        rec = conv[i]
        first = rec['conversations'][0]['value']
        if rec['img_path'] is None:
            assert '<image>' not in first
        else:
            assert first.startswith('<image>\n') and osp.isfile(rec['img_path'])
            assert sum(t['value'].count('<image>') for t in rec['conversations']) == 1

    pre = DATASETS.build(dict(cfg, ann_file='llava/pretrain_train.json'))
    assert len(pre) == 24 and pre.stats['pure_text'] == 0
    rec = pre[0]
    assert len(rec['conversations']) == 2 and rec['conversations'][0]['value'].startswith('<image>\n')
