import pytest
import torch

from mmxsam.models.language.constants import IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX
from mmxsam.models.utils import (build_conditions, contrastive_conditions, gather_seg_embeds, phrase_spans,
                                 pool_phrases, seg_positions)

SEG, P, EP = 90, 91, 92  # <SEG>, <p>, </p>
IMG, REG = IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX
PAD = 0


def _ids(*tokens):
    return torch.tensor(tokens, dtype=torch.long)


# An *expanded* sequence: the <image> placeholder became 3 visual tokens (each IMAGE_TOKEN_INDEX); the
# second phrase holds a <region> placeholder.
#          0  1    2    3    4  5   6  7    8  9   10   11  12  13
SEQ = _ids(1, IMG, IMG, IMG, 5, P, 7, 8, EP, 4, P, REG, EP, SEG)
SPANS = _ids(-1, -1, -1, -1, -1, 0, 0, 0, 0, -1, 1, 1, 1, -1)


def test_phrase_spans_inclusive_with_region():
    assert torch.equal(phrase_spans(SEQ, P, EP), SPANS)
    assert phrase_spans(SEQ, P, EP).dtype == torch.long


def test_phrase_spans_excludes_visual_tokens_inside_a_span():
    ids = _ids(P, 3, IMG, IMG, EP)
    assert phrase_spans(ids, P, EP).tolist() == [0, 0, -1, -1, 0]
    assert phrase_spans(ids, P, EP, exclude_ids=()).tolist() == [0, 0, 0, 0, 0]


@pytest.mark.parametrize('ids, message', [
    (_ids(3, EP, P, 4, EP), r'`</p>` without an open `<p>` at position 1'),
    (_ids(P, 3, P, 4, EP, EP), r'nested phrase tags: .* position 2'),
    (_ids(P, 3, EP, 5, P, 4), r'never closed .* opened at position 4'),
])
def test_phrase_spans_unbalanced_raises(ids, message):
    with pytest.raises(ValueError, match=message):
        phrase_spans(ids, P, EP)


def test_pool_phrases_matches_hand_mean():
    hidden = torch.arange(SEQ.numel() * 2, dtype=torch.float32).view(-1, 2) ** 1.5  # (L, 2), non-linear
    pooled = pool_phrases(hidden, SPANS)
    expected = torch.stack([hidden[5:9].mean(0), hidden[10:13].mean(0)])
    assert pooled.shape == (2, 2)
    torch.testing.assert_close(pooled, expected)
    # bf16 input: summed in fp32, returned in bf16
    assert pool_phrases(hidden.bfloat16(), SPANS).dtype == torch.bfloat16
    assert pool_phrases(hidden, torch.full_like(SPANS, -1)).shape == (0, 2)


def test_pool_phrases_gradient_reaches_span_tokens_only():
    hidden = torch.randn(SEQ.numel(), 3, requires_grad=True)
    pool_phrases(hidden, SPANS).sum().backward()
    grad_rows = hidden.grad.abs().sum(-1) > 0
    assert torch.equal(grad_rows, SPANS >= 0)


def test_seg_gather():
    hidden = torch.randn(SEQ.numel(), 4)
    assert seg_positions(SEQ, SEG).tolist() == [13]
    torch.testing.assert_close(gather_seg_embeds(hidden, SEQ, SEG), hidden[13:14])
    assert gather_seg_embeds(hidden, _ids(*[1] * SEQ.numel()), SEG).shape == (0, 4)


def test_build_conditions_pads_and_masks():
    # sample 0: two phrases + one <SEG>; sample 1: right-padded, one phrase and two <SEG>;
    # sample 2: <SEG> but no phrase
    seq1 = _ids(1, IMG, IMG, IMG, P, 6, EP, SEG, 3, SEG, PAD, PAD, PAD, PAD)
    seq2 = _ids(PAD, PAD, 1, IMG, IMG, IMG, 2, 3, 4, 5, 6, 7, 8, SEG)
    ids = torch.stack([SEQ, seq1, seq2])  # (3, 14)
    hidden = torch.randn(3, SEQ.numel(), 5)
    out = build_conditions(hidden, ids, P, EP, SEG)
    assert out['conditions'].shape == (3, 2, 5)
    assert out['condition_mask'].tolist() == [[True, True], [True, False], [False, False]]
    assert out['num_phrases'] == [2, 1, 0]
    torch.testing.assert_close(out['conditions'][0], pool_phrases(hidden[0], SPANS))
    torch.testing.assert_close(out['conditions'][1, 0], hidden[1, 4:7].mean(0))
    assert not out['conditions'][1, 1].any() and not out['conditions'][2].any()  # padded slots are zero
    assert [s.shape for s in out['seg_embeds']] == [(1, 5), (2, 5), (1, 5)]
    torch.testing.assert_close(out['seg_embeds'][1], hidden[1, [7, 9]])
    torch.testing.assert_close(out['seg_embeds'][2], hidden[2, 13:14])


def test_build_conditions_zero_phrases_everywhere():
    ids = torch.stack([_ids(1, IMG, SEG), _ids(1, 2, 3)])
    out = build_conditions(torch.randn(2, 3, 4), ids, P, EP, SEG)
    assert out['conditions'].shape == (2, 0, 4)
    assert out['condition_mask'].shape == (2, 0) and out['condition_mask'].dtype == torch.bool
    assert out['num_phrases'] == [0, 0]
    assert [s.shape for s in out['seg_embeds']] == [(1, 4), (0, 4)]


def test_build_conditions_error_names_sample():
    ids = torch.stack([SEQ, _ids(*[1] * 12, EP, P)])
    with pytest.raises(ValueError, match='sample 1 position 12'):
        build_conditions(torch.randn(2, SEQ.numel(), 4), ids, P, EP, SEG)


def test_build_conditions_feeds_the_head_format():
    hidden = torch.randn(1, SEQ.numel(), 8, requires_grad=True)
    out = build_conditions(hidden, SEQ[None], P, EP, SEG)
    (out['conditions'].sum() + out['seg_embeds'][0].sum()).backward()
    assert hidden.grad is not None and hidden.grad[0, 13].abs().sum() > 0


def test_contrastive_conditions():
    items = [torch.randn(1, 6) for _ in range(3)]
    conditions, mask, labels = contrastive_conditions(items)
    assert conditions.shape == (3, 3, 6)
    assert mask.all() and mask.shape == (3, 3) and mask.dtype == torch.bool
    assert labels.tolist() == [0, 1, 2]
    for b in range(3):
        torch.testing.assert_close(conditions[b], torch.cat(items))
        torch.testing.assert_close(conditions[b, labels[b]], items[b][0])  # target = its own expression
    with pytest.raises(ValueError, match='item 1'):
        contrastive_conditions([torch.randn(1, 6), torch.randn(2, 6)])
    with pytest.raises(ValueError, match='at least one'):
        contrastive_conditions([])
