"""build_seg_items: pairing <SEG> embeddings with class sets on hand-made conditions."""
import pytest
import torch

from mmxsam.models.utils.seg_items import SEG_TASK_MODES, TEXT_TASKS, SegItems, build_seg_items

C = 3
SAMPLE_TASKS = ('genseg', 'vgdseg', 'gcgseg', 'ovseg', 'intseg')
EXPRESSION_TASKS = ('refseg', 'reaseg')


def _conditions(num_phrases, k_max=None):
    """(B, K_max, C) with row ``[b, k] = 100 b + 10 k + (0, 1, 2)``, zero beyond K_b."""
    k_max = max(num_phrases) if k_max is None else k_max
    out = torch.zeros(len(num_phrases), k_max, C)
    for b, k in enumerate(num_phrases):
        for j in range(k):
            out[b, j] = 100 * b + 10 * j + torch.arange(C, dtype=torch.float32)
    return out


def _segs(b, s):
    """(s, C) <SEG> embeddings of sample b: ``-(100 b + 10 j + 1)``."""
    return -(100 * b + 10 * torch.arange(s, dtype=torch.float32)[:, None] + 1).expand(s, C).clone()


def _build(num_phrases, num_segs, tasks, training=True, contrastive=True, k_max=None):
    names = [f'img{b}.jpg' for b in range(len(tasks))]
    return build_seg_items(_conditions(num_phrases, k_max), num_phrases,
                           [_segs(b, s) for b, s in enumerate(num_segs)], tasks, names, training=training,
                           contrastive=contrastive)


def test_task_table():
    assert {t: SEG_TASK_MODES[t] for t in SAMPLE_TASKS} == dict.fromkeys(SAMPLE_TASKS, 'sample')
    assert {t: SEG_TASK_MODES[t] for t in EXPRESSION_TASKS} == dict.fromkeys(EXPRESSION_TASKS, 'expression')
    assert 'imgconv' in TEXT_TASKS and 'imgconv' not in SEG_TASK_MODES


# ---------------------------------------------------------------------------------------------
# sample mode
@pytest.mark.parametrize('task', SAMPLE_TASKS)
@pytest.mark.parametrize('training', [True, False])
def test_sample_mode_one_item_per_sample(task, training):
    num_phrases = [2, 4, 1]
    cond = _conditions(num_phrases, k_max=5)
    segs = [_segs(b, 1) for b in range(3)]
    items = build_seg_items(cond, num_phrases, segs, [task] * 3, ['a', 'b', 'c'], training=training)
    assert isinstance(items, SegItems) and len(items) == 3 and items.warnings == []
    assert items.sample_index.tolist() == [0, 1, 2] and items.sample_index.dtype == torch.long
    assert items.phrase_index == [[0, 1], [0, 1, 2, 3], [0]]
    assert items.conditions.shape == (3, 4, C)  # padded to the largest K_b of the items
    assert items.condition_mask.dtype == torch.bool
    assert items.condition_mask.tolist() == [[True, True, False, False], [True] * 4,
                                             [True, False, False, False]]
    for i, k in enumerate(num_phrases):
        torch.testing.assert_close(items.conditions[i, :k], cond[i, :k])
        assert (items.conditions[i, k:] == 0).all()
    torch.testing.assert_close(items.seg_embeds, torch.cat(segs))
    assert items.target_phrase == [None] * 3 and items.target_label == [None] * 3


def test_sample_mode_first_seg_used_in_prediction():
    items = _build([2], [3], ['genseg'], training=False)
    assert len(items) == 1
    torch.testing.assert_close(items.seg_embeds[0], _segs(0, 3)[0])
    assert len(items.warnings) == 1 and 'img0.jpg' in items.warnings[0] and 'genseg' in items.warnings[0]


# ---------------------------------------------------------------------------------------------
# expression mode
@pytest.mark.parametrize('task', EXPRESSION_TASKS)
def test_expression_mode_prediction(task):
    items = _build([2, 3], [2, 3], [task, task], training=False)
    assert len(items) == 5 and items.warnings == []
    assert items.sample_index.tolist() == [0, 0, 1, 1, 1]
    assert items.target_phrase == [0, 1, 0, 1, 2]
    assert items.target_label == [0] * 5
    assert items.phrase_index == [[0], [1], [0], [1], [2]]
    assert items.conditions.shape == (5, 1, C) and items.condition_mask.all()
    cond = _conditions([2, 3])
    pairs = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    for i, (b, k) in enumerate(pairs):
        torch.testing.assert_close(items.conditions[i, 0], cond[b, k])  # k-th phrase ...
        torch.testing.assert_close(items.seg_embeds[i], _segs(b, k + 1)[k])  # ... with the k-th <SEG>


def test_expression_mode_training_not_contrastive():
    items = _build([2, 1], [2, 1], ['refseg', 'reaseg'], training=True, contrastive=False)
    assert len(items) == 3 and items.target_label == [0, 0, 0]
    assert items.phrase_index == [[0], [1], [0]] and items.conditions.shape == (3, 1, C)


def test_expression_mode_training_contrastive_with_mixed_batch():
    # sample 0 refseg (2 expr.), sample 1 genseg (3 phrases), sample 2 reaseg (1 expr.), sample 3 imgconv
    num_phrases, num_segs = [2, 3, 1, 0], [2, 1, 1, 0]
    tasks = ['refseg', 'genseg', 'reaseg', 'imgconv']
    items = _build(num_phrases, num_segs, tasks, training=True)
    cond = _conditions(num_phrases)
    assert len(items) == 4 and items.warnings == []
    assert items.sample_index.tolist() == [0, 0, 1, 2]
    assert items.target_phrase == [0, 1, None, 0]
    # every expression item classifies against all expressions of the batch, in item order
    expressions = torch.stack([cond[0, 0], cond[0, 1], cond[2, 0]])
    assert items.conditions.shape == (4, 3, C)
    for i, rank in ((0, 0), (1, 1), (3, 2)):
        torch.testing.assert_close(items.conditions[i], expressions)
        assert items.condition_mask[i].all()
        assert items.target_label[i] == rank
        assert items.phrase_index[i] == [0, 1, 2]
    # the sample item keeps its own classes
    torch.testing.assert_close(items.conditions[2], cond[1, :3])
    assert items.condition_mask[2].all() and items.target_label[2] is None
    assert items.phrase_index[2] == [0, 1, 2]
    torch.testing.assert_close(items.seg_embeds, torch.stack(
        [_segs(0, 2)[0], _segs(0, 2)[1], _segs(1, 1)[0], _segs(2, 1)[0]]))


def test_contrastive_sample_item_not_padded_to_expression_count():
    items = _build([1, 2, 2], [1, 2, 2], ['genseg', 'refseg', 'refseg'], training=True)
    assert items.conditions.shape == (5, 4, C)
    assert items.condition_mask.tolist() == [[True, False, False, False]] + [[True] * 4] * 4
    assert items.target_label == [None, 0, 1, 2, 3]


def test_imgconv_gives_no_item_and_empty_batch():
    items = _build([0, 0], [0, 0], ['imgconv', 'imgconv'], training=True)
    assert len(items) == 0 and items.warnings == []
    assert items.conditions.shape == (0, 0, C) and items.condition_mask.shape == (0, 0)
    assert items.seg_embeds.shape == (0, C) and items.sample_index.shape == (0, )
    assert items.sample_index.dtype == torch.long


def test_imgconv_with_phrases_but_no_seg_is_fine():
    items = _build([2, 1], [0, 1], ['imgconv', 'genseg'], training=True)
    assert len(items) == 1 and items.sample_index.tolist() == [1]


# ---------------------------------------------------------------------------------------------
# errors (training) / warnings (prediction)
BAD_CASES = [
    # (num_phrases, num_segs, task, message fragment)
    ([2], [2], 'genseg', '2 <SEG> tokens'),
    ([2], [0], 'ovseg', 'no <SEG>'),
    ([0], [1], 'gcgseg', '1 <SEG> token.*no <p>'),
    ([0], [1], 'refseg', '1 <SEG> token.*no <p>'),
    ([3], [2], 'refseg', '2 <SEG> token.*3 expression'),
    ([1], [2], 'reaseg', '2 <SEG> token.*1 expression'),
    ([2], [0], 'refseg', 'no <SEG>'),
]


@pytest.mark.parametrize('num_phrases, num_segs, task, fragment', BAD_CASES)
def test_bad_counts_raise_in_training(num_phrases, num_segs, task, fragment):
    with pytest.raises(ValueError, match=rf"img1\.jpg \(task '{task}'\): {fragment}"):
        _build([1] + num_phrases, [1] + num_segs, ['genseg', task], training=True)


@pytest.mark.parametrize('num_phrases, num_segs, task, fragment', BAD_CASES)
def test_bad_counts_warn_in_prediction(num_phrases, num_segs, task, fragment):
    items = _build([1] + num_phrases, [1] + num_segs, ['genseg', task], training=False)
    assert len(items.warnings) == 1
    assert 'img1.jpg' in items.warnings[0] and task in items.warnings[0]
    k, s = num_phrases[0], num_segs[0]
    if k == 0 or s == 0:
        expected = 0
    elif SEG_TASK_MODES[task] == 'sample':
        expected = 1
    else:
        expected = min(k, s)
    assert items.sample_index.tolist() == [0] + [1] * expected  # the good sample is unaffected
    if SEG_TASK_MODES[task] == 'expression':
        assert items.target_phrase[1:] == list(range(expected))
        cond = _conditions([1] + num_phrases)
        for i in range(expected):  # usable pairs: the first min(S, K), own expression only
            torch.testing.assert_close(items.conditions[1 + i, 0], cond[1, i])
            torch.testing.assert_close(items.seg_embeds[1 + i], _segs(1, s)[i])


@pytest.mark.parametrize('training', [True, False])
def test_seg_in_text_task_always_raises(training):
    with pytest.raises(ValueError, match=r"img0\.jpg \(task 'imgconv'\): 1 <SEG>"):
        _build([0], [1], ['imgconv'], training=training)


@pytest.mark.parametrize('training', [True, False])
def test_unknown_task_always_raises(training):
    with pytest.raises(ValueError, match=r"img0\.jpg \(task 'panseg'\): unknown task"):
        _build([1], [1], ['panseg'], training=training)
