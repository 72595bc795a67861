"""Fidelity: span pooling and the contrastive classification on small hand-written tensors, against values
worked out by hand (reference §1.3 "Class logits", §1.6 "Condition embeddings", §2 refseg).

* a phrase's condition is the **mean over ``<p>`` .. ``</p>`` inclusive** of the *projected* hidden states
  (``llm_projector`` first, then the mean; visual tokens inside a span are excluded, ``<region>`` is kept);
* ``logit[q, c] = exp(logit_scale) * cos(query_q, class_c)`` with the learned background embedding as the last
  class, padded condition slots masked out, logits clamped to +-500, ``logit_scale`` initialised to ln(1/0.07);
* referring segmentation classifies each expression's item against every expression of the batch + bg.

Tests next to the modules compare the same functions with torch reference expressions on random tensors
(``tests/test_models/test_utils/test_condition_pooling.py``,
``tests/test_models/test_heads/test_xsam_mask2former_head.py::test_conditioned_logits_by_hand``).
"""
import math
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401  (registration)
from mmdet.registry import MODELS
from mmxsam.models.detectors.xsam import XSAM
from mmxsam.models.language.constants import IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX
from mmxsam.models.projectors import XSAMMLPProjector
from mmxsam.models.utils import build_conditions, contrastive_conditions

SEG, P, EP = 7, 8, 9  # <SEG>, <p>, </p> ids of a made-up vocabulary
IMG, REG = IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX


def test_span_mean_by_hand():
    #         0    1    2  3    4   5  6    7    8   9
    ids = [[IMG, IMG, 5, P, 3, EP, P, REG, EP, SEG]]
    hidden = torch.tensor([[[9., 9.], [9., 9.], [0., 0.],
                            [1., 2.], [3., 4.], [5., 9.],  # phrase 0: <p> 3 </p>
                            [2., 0.], [4., 2.], [0., 1.],  # phrase 1: <p> <region> </p>
                            [6., -1.]]])                   # <SEG>
    out = build_conditions(hidden, torch.tensor(ids), P, EP, SEG)
    # phrase 0: ((1 + 3 + 5) / 3, (2 + 4 + 9) / 3) = (3, 5); phrase 1: ((2 + 4 + 0) / 3, (0 + 2 + 1) / 3) = (2, 1)
    assert out['conditions'].tolist() == [[[3.0, 5.0], [2.0, 1.0]]]
    assert out['condition_mask'].tolist() == [[True, True]] and out['num_phrases'] == [2]
    assert out['seg_embeds'][0].tolist() == [[6.0, -1.0]]  # the hidden state at <SEG>, as is

    # visual tokens inside a span do not count: <p> 4 <image> <image> </p> -> (2 + 4 + 3) / 3 = 3
    ids = torch.tensor([[P, 4, IMG, IMG, EP, SEG]])
    hidden = torch.tensor([[[2.], [4.], [100.], [-100.], [3.], [0.]]])
    assert build_conditions(hidden, ids, P, EP, SEG)['conditions'].tolist() == [[[3.0]]]


def _gelu(x):  # exact GELU: x * Phi(x)
    return 0.5 * x * (1 + math.erf(x / math.sqrt(2)))


def test_projection_before_the_mean():
    """XSAM projects every hidden state with ``llm_projector`` and then averages the span (the official order);
    with the GELU in between, averaging first would give another answer."""
    projector = XSAMMLPProjector(2, 2)  # Linear -> GELU -> Linear
    with torch.no_grad():  # identity linears: the projector is an element-wise GELU
        for layer in (projector.model[0], projector.model[2]):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    owner = SimpleNamespace(llm_projector=projector, llm=SimpleNamespace(p_start_id=P, p_end_id=EP, seg_token_id=SEG))
    ids = torch.tensor([[P, 3, EP, SEG]])
    hidden = torch.tensor([[[-1., 2.], [1., 0.], [0., -2.], [1., 1.]]])
    out = XSAM._conditions(owner, hidden, ids)
    # mean of GELU over the span: ((g(-1) + g(1) + g(0)) / 3, (g(2) + g(0) + g(-2)) / 3); the span's mean is 0,
    # so averaging before the GELU would give (0, 0)
    expected = [(_gelu(-1) + _gelu(1) + _gelu(0)) / 3, (_gelu(2) + _gelu(0) + _gelu(-2)) / 3]
    assert expected[0] == pytest.approx(1 / 3 * (0.8413447 - 0.1586553), abs=1e-6)
    torch.testing.assert_close(out['conditions'][0, 0], torch.tensor(expected), atol=1e-6, rtol=0)
    torch.testing.assert_close(out['seg_embeds'][0][0], torch.tensor([_gelu(1), _gelu(1)]), atol=1e-6, rtol=0)


@pytest.fixture(scope='module')
def head(repo_root):
    """The conditioned decoder head of the tiny X-SAM model (configs/_base_/models/xsam_tiny.py)."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(repo_root, 'configs/_base_/models/xsam_tiny.py')).model.panoptic_head
    return MODELS.build(cfg).eval()


def _vec(head, *xy):
    """A decoder-width vector whose first components are ``xy`` (the rest zero)."""
    v = torch.zeros(head.decoder_embed_dims)
    v[:len(xy)] = torch.tensor(xy, dtype=torch.float)
    return v


def test_cosine_logits_with_background_by_hand(head):
    assert head.cls_mode == 'conditioned'
    assert head.logit_scale.item() == pytest.approx(math.log(1 / 0.07))  # CLIP-style init: x 14.2857
    with torch.no_grad():
        head.bg_embed.weight.copy_(_vec(head, -3, -4)[None])
    query = _vec(head, 3, 4)[None, None] * 10  # the length must not matter: cosine
    conditions = torch.stack([_vec(head, 4, 3), _vec(head, 0, 1), _vec(head, 1, 0)])[None]
    mask = torch.tensor([[True, True, False]])  # slot 2 is padding
    with torch.no_grad():
        logits = head.classify(query, conditions, mask)[0, 0]
    # cos((3,4),(4,3)) = 24/25, cos((3,4),(0,1)) = 4/5, cos((3,4),(-3,-4)) = -1 (background, last)
    scale = 1 / 0.07
    assert logits.shape == (4, )
    assert logits[0].item() == pytest.approx(scale * 24 / 25, rel=1e-5)
    assert logits[1].item() == pytest.approx(scale * 4 / 5, rel=1e-5)
    assert logits[2].item() == torch.finfo(logits.dtype).min  # padded slot
    assert logits[3].item() == pytest.approx(-scale, rel=1e-5)
    probs = logits.softmax(-1)
    assert probs[2].item() == 0
    # softmax by hand over the three real classes
    z = [math.exp(scale * 24 / 25), math.exp(scale * 4 / 5), math.exp(-scale)]
    assert probs[0].item() == pytest.approx(z[0] / sum(z), rel=1e-4)

    with torch.no_grad():  # a learned scale of 1000: 960 is clamped to 500
        head.logit_scale.fill_(math.log(1000.0))
        clamped = head.classify(query, conditions, mask)[0, 0]
        head.logit_scale.fill_(math.log(1 / 0.07))
    assert clamped[0].item() == 500.0 and clamped[1].item() == 500.0 and clamped[3].item() == -500.0


def test_refseg_contrast_across_the_batch_by_hand(head):
    """Two expressions in a batch: each item classifies against [expr 0, expr 1, bg], its target is its own
    index (reference §2, refseg)."""
    with torch.no_grad():
        head.bg_embed.weight.copy_(_vec(head, 0, 0, 1)[None])  # orthogonal to both expressions
    items = [_vec(head, 1, 0)[None], _vec(head, 1, 1)[None]]  # one condition per decoder item
    conditions, mask, labels = contrastive_conditions(items)
    assert labels.tolist() == [0, 1] and mask.all()
    queries = torch.stack([_vec(head, 2, 0), _vec(head, 0, 5)])[:, None]  # (2 items, 1 query, C)
    with torch.no_grad():
        logits = head.classify(queries, conditions, mask)[:, 0]  # (2, 3)
    s = 1 / 0.07
    # item 0, query (2,0): cos with (1,0) = 1, with (1,1) = 1/sqrt2, with bg = 0
    # item 1, query (0,5): cos with (1,0) = 0, with (1,1) = 1/sqrt2, with bg = 0
    expected = torch.tensor([[s, s / math.sqrt(2), 0.], [0., s / math.sqrt(2), 0.]])
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-5)
    assert logits.argmax(-1).tolist() == labels.tolist()  # each query prefers its own expression
