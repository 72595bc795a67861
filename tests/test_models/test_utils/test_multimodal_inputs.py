"""merge_multimodal_inputs / split_prompt / strip_generated on hand-made ids and a tiny embedding."""
import pytest
import torch
from torch import nn

from mmxsam.models.language.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX
from mmxsam.models.utils.multimodal_inputs import (PAD_INDEX, merge_multimodal_inputs, split_prompt,
                                                   strip_generated)

IMG, REG, IGN = IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX, IGNORE_INDEX
VOCAB, H = 20, 4


def _ids(*tokens):
    return torch.tensor(tokens, dtype=torch.long)


@pytest.fixture
def embed():
    torch.manual_seed(0)
    return nn.Embedding(VOCAB, H)


def _vis(n, offset=100.0):
    """(n, H) distinguishable visual tokens (far from any embedding row)."""
    return torch.arange(n * H, dtype=torch.float32).view(n, H) + offset


def _merge(embed, *args, **kwargs):
    with torch.no_grad():
        return merge_multimodal_inputs(*args, embed_tokens=embed, **kwargs)


# ---------------------------------------------------------------------------------------------
# image / region splicing
def test_image_placeholder_is_replaced_at_its_position(embed):
    ids = _ids(1, 2, IMG, 3, 4)
    vis = _vis(3)
    labels = _ids(IGN, IGN, IGN, 3, 4)
    out = _merge(embed, [ids], image_tokens=[vis], labels=[labels])
    emb = out['inputs_embeds'][0]
    assert emb.shape == (7, H)
    torch.testing.assert_close(emb[2:5], vis)
    torch.testing.assert_close(emb[[0, 1, 5, 6]], embed(_ids(1, 2, 3, 4)))
    assert out['expanded_ids'][0].tolist() == [1, 2, IMG, IMG, IMG, 3, 4]
    assert out['labels'][0].tolist() == [IGN] * 5 + [3, 4]
    assert out['attention_mask'].tolist() == [[1] * 7]
    assert out['lengths'].tolist() == [7]
    for key in ('expanded_ids', 'attention_mask', 'labels', 'lengths'):
        assert out[key].dtype == torch.long


def test_image_at_the_start_and_at_the_end(embed):
    vis = _vis(2)
    out = _merge(embed, [_ids(IMG, 5), _ids(5, IMG)], image_tokens=[vis, vis])
    assert out['expanded_ids'].tolist() == [[IMG, IMG, 5], [5, IMG, IMG]]
    torch.testing.assert_close(out['inputs_embeds'][0, :2], vis)
    torch.testing.assert_close(out['inputs_embeds'][1, 1:], vis)
    torch.testing.assert_close(out['inputs_embeds'][0, 2], embed.weight[5])
    torch.testing.assert_close(out['inputs_embeds'][1, 0], embed.weight[5])


def test_regions_replaced_in_order(embed):
    ids = _ids(1, IMG, 2, REG, 3, REG, 4)
    vis, regions = _vis(2), _vis(2, offset=-50.0)
    labels = _ids(1, IGN, 2, 7, 3, 8, 4)  # a (bogus) label on a region position must be dropped
    out = _merge(embed, [ids], image_tokens=[vis], region_tokens=[regions], labels=[labels])
    emb, exp = out['inputs_embeds'][0], out['expanded_ids'][0]
    assert exp.tolist() == [1, IMG, IMG, 2, REG, 3, REG, 4]
    torch.testing.assert_close(emb[1:3], vis)
    torch.testing.assert_close(emb[4], regions[0])  # first <region> <- first feature
    torch.testing.assert_close(emb[6], regions[1])
    text = (exp >= 0).nonzero(as_tuple=True)[0]
    torch.testing.assert_close(emb[text], embed(exp[text]))
    # placeholders never supervised; every other label preserved
    assert out['labels'][0].tolist() == [1, IGN, IGN, 2, IGN, 3, IGN, 4]


def test_placeholder_labels_forced_to_ignore_even_if_given(embed):
    out = _merge(embed, [_ids(IMG, 5, 6)], image_tokens=[_vis(2)], labels=[_ids(9, 5, IGN)])
    assert out['labels'][0].tolist() == [IGN, IGN, 5, IGN]


def test_region_dtype_cast_to_embedding_dtype(embed):
    out = _merge(embed, [_ids(1, REG)], image_tokens=[None],
                 region_tokens=[_vis(1).double()])
    assert out['inputs_embeds'].dtype == torch.float32
    torch.testing.assert_close(out['inputs_embeds'][0, 1], _vis(1)[0])


def test_sample_without_image(embed):
    out = _merge(embed, [_ids(3, 4, 5)], image_tokens=[None], labels=[_ids(IGN, 4, 5)])
    torch.testing.assert_close(out['inputs_embeds'][0], embed(_ids(3, 4, 5)))
    assert out['expanded_ids'].tolist() == [[3, 4, 5]]
    assert out['labels'].tolist() == [[IGN, 4, 5]]


def test_no_labels_gives_none(embed):
    assert _merge(embed, [_ids(3, IMG)], image_tokens=[_vis(2)])['labels'] is None


# ---------------------------------------------------------------------------------------------
# padding
def _batch():
    # sample 0: 2 text + image of 3 = 5 tokens; sample 1: text only, 2 tokens; sample 2: 1 + region = 2
    ids = [_ids(1, IMG, 2), _ids(3, 4), _ids(5, REG)]
    labels = [_ids(IGN, IGN, 2), _ids(IGN, 4), _ids(5, IGN)]
    return ids, labels, [_vis(3), None, None], [None, None, _vis(1, offset=-9.0)]


def test_right_padding(embed):
    ids, labels, vis, regs = _batch()
    out = _merge(embed, ids, image_tokens=vis, region_tokens=regs, labels=labels, padding_side='right')
    assert out['lengths'].tolist() == [5, 2, 2]
    assert out['inputs_embeds'].shape == (3, 5, H)
    assert out['attention_mask'].tolist() == [[1] * 5, [1, 1, 0, 0, 0], [1, 1, 0, 0, 0]]
    P = PAD_INDEX
    assert out['expanded_ids'].tolist() == [[1, IMG, IMG, IMG, 2], [3, 4, P, P, P], [5, REG, P, P, P]]
    assert out['labels'].tolist() == [[IGN, IGN, IGN, IGN, 2], [IGN, 4, IGN, IGN, IGN],
                                      [5, IGN, IGN, IGN, IGN]]
    assert (out['inputs_embeds'][1:, 2:] == 0).all()
    torch.testing.assert_close(out['inputs_embeds'][1, :2], embed(_ids(3, 4)))
    torch.testing.assert_close(out['inputs_embeds'][2, 1], _vis(1, offset=-9.0)[0])


def test_left_padding(embed):
    ids, labels, vis, regs = _batch()
    out = _merge(embed, ids, image_tokens=vis, region_tokens=regs, labels=labels, padding_side='left')
    assert out['lengths'].tolist() == [5, 2, 2]
    assert out['attention_mask'].tolist() == [[1] * 5, [0, 0, 0, 1, 1], [0, 0, 0, 1, 1]]
    P = PAD_INDEX
    assert out['expanded_ids'].tolist() == [[1, IMG, IMG, IMG, 2], [P, P, P, 3, 4], [P, P, P, 5, REG]]
    assert out['labels'].tolist() == [[IGN, IGN, IGN, IGN, 2], [IGN, IGN, IGN, IGN, 4],
                                      [IGN, IGN, IGN, 5, IGN]]
    assert (out['inputs_embeds'][1:, :3] == 0).all()
    torch.testing.assert_close(out['inputs_embeds'][1, 3:], embed(_ids(3, 4)))
    torch.testing.assert_close(out['inputs_embeds'][0, 1:4], _vis(3))


def test_pad_index_is_no_token():
    assert PAD_INDEX not in (IMG, REG) and PAD_INDEX < 0


def test_gradients_flow_to_embedding_and_visual_tokens(embed):
    vis = _vis(2).requires_grad_()
    reg = _vis(1, offset=3.0).requires_grad_()
    out = merge_multimodal_inputs([_ids(1, IMG, REG)], embed, [vis], region_tokens=[reg])
    out['inputs_embeds'].sum().backward()
    assert vis.grad is not None and (vis.grad == 1).all()
    assert reg.grad is not None and (reg.grad == 1).all()
    assert embed.weight.grad[1].abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# errors
NAMES = ['good.jpg', 'bad.jpg']


def test_two_images_is_an_error(embed):
    with pytest.raises(ValueError, match=r'bad\.jpg.*2 <image>'):
        _merge(embed, [_ids(1), _ids(IMG, 2, IMG)], image_tokens=[None, _vis(2)], names=NAMES)


def test_image_placeholder_without_image_is_an_error(embed):
    with pytest.raises(ValueError, match=r'bad\.jpg.*no image'):
        _merge(embed, [_ids(1), _ids(IMG, 2)], image_tokens=[None, None], names=NAMES)


@pytest.mark.parametrize('ids, regions, counts', [
    (_ids(REG, 2, REG), _vis(1), '2 <region>.*1 visual'),  # more placeholders than features
    (_ids(REG, 2), _vis(2), '1 <region>.*2 visual'),  # more features than placeholders
    (_ids(REG, 2), None, '1 <region>.*0 visual'),  # a placeholder, no features at all
    (_ids(1, 2), _vis(1), '0 <region>.*1 visual'),  # features, no placeholder
])
def test_region_count_mismatch_is_an_error(embed, ids, regions, counts):
    with pytest.raises(ValueError, match=r'bad\.jpg: ' + counts):
        _merge(embed, [_ids(1), ids], image_tokens=[None, None], region_tokens=[None, regions], names=NAMES)


def test_over_long_sequence_is_an_error(embed):
    ids = [_ids(1), _ids(IMG, 2)]
    vis = [None, _vis(4)]
    out = _merge(embed, ids, image_tokens=vis, max_length=5)  # exactly the context: fine
    assert out['lengths'].tolist() == [1, 5]
    with pytest.raises(ValueError, match=r'bad\.jpg: 5 tokens.*context of 4'):
        _merge(embed, ids, image_tokens=vis, max_length=4, names=NAMES)


def test_default_names(embed):
    with pytest.raises(ValueError, match='sample 1'):
        _merge(embed, [_ids(1), _ids(IMG)], image_tokens=[None, None])


def test_bad_padding_side(embed):
    with pytest.raises(ValueError, match='padding_side'):
        _merge(embed, [_ids(1)], image_tokens=[None], padding_side='middle')


def test_batch_size_mismatches(embed):
    with pytest.raises(ValueError):
        _merge(embed, [], image_tokens=[])
    with pytest.raises(ValueError):
        _merge(embed, [_ids(1), _ids(2)], image_tokens=[None])
    with pytest.raises(ValueError):
        _merge(embed, [_ids(1), _ids(2)], image_tokens=[None, None], region_tokens=[None])


# ---------------------------------------------------------------------------------------------
# split_prompt / strip_generated
def test_split_prompt_cuts_before_last_answer():
    ids = _ids(1, 2, 3, 4, 5, 6, 7, 8)
    labels = _ids(IGN, IGN, 5, 6, IGN, IGN, 7, 8)
    assert split_prompt(ids, labels).tolist() == [1, 2, 3, 4, 5, 6]


def test_split_prompt_single_answer():
    ids = _ids(1, IMG, 3, 4, 5)
    assert split_prompt(ids, _ids(IGN, IGN, IGN, 4, 5)).tolist() == [1, IMG, 3]


def test_split_prompt_unsupervised_is_whole():
    ids = _ids(1, 2, 3)
    assert split_prompt(ids, _ids(IGN, IGN, IGN)).tolist() == [1, 2, 3]


def test_split_prompt_all_supervised_is_empty():
    out = split_prompt(_ids(1, 2, 3), _ids(1, 2, 3))
    assert out.shape == (0, ) and out.dtype == torch.long


def test_strip_generated():
    seqs = _ids(5, 6, 9, 0, 0,
                5, 6, 7, 8, 1,
                9, 1, 2, 3, 4,
                3, 8, 2, 9, 0).view(4, 5)
    out = strip_generated(seqs, [9])
    assert [o.tolist() for o in out] == [[5, 6], [5, 6, 7, 8, 1], [], [3, 8, 2]]
    # several stop ids: the first of any of them
    out = strip_generated(seqs, [9, 8])
    assert [o.tolist() for o in out] == [[5, 6], [5, 6, 7], [], [3]]
    assert strip_generated(seqs, (2, ))[0].tolist() == [5, 6, 9, 0, 0]  # no stop: row kept whole


def test_sanitize_phrase_tags():
    from mmxsam.models.utils.multimodal_inputs import sanitize_phrase_tags
    P, E = 50, 51
    ids = torch.tensor([E, 1, P, 2, P, 3, E, 4, E, P, 5])  # stray </p>, nested <p>, stray </p>, unclosed <p>
    out, removed = sanitize_phrase_tags(ids, P, E)
    assert out.tolist() == [1, P, 2, 3, E, 4, 5] and removed == 4
    good = torch.tensor([P, 1, E, 7, P, 2, E])
    out, removed = sanitize_phrase_tags(good, P, E)
    assert torch.equal(out, good) and removed == 0
