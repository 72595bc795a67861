"""prompt_sources: same-image, cross-image and batch prompt sources of VGD slots."""
import pytest
import torch

from mmxsam.models.utils.prompt_sources import prompt_sources

CATS = [[1, 2], None, [2, 3], [1]]


def test_same_image():
    sources, fallbacks = prompt_sources(CATS, 'same_image')
    assert sources == [[(0, 0), (0, 1)], [], [(2, 0), (2, 1)], [(3, 0)]] and fallbacks == 0


def test_cross_image_takes_the_next_other_sample_and_falls_back():
    sources, fallbacks = prompt_sources(CATS, 'cross_image')
    # sample 0: category 1 from sample 3, category 2 from sample 2; sample 2: category 2 from sample 0 (cyclic),
    # category 3 only in itself (fallback); sample 3: category 1 from sample 0
    assert sources == [[(3, 0), (2, 0)], [], [(0, 1), (2, 1)], [(0, 0)]]
    assert fallbacks == 1


def test_batch_draws_among_every_sample_with_the_category():
    seen = set()
    for seed in range(30):
        sources, fallbacks = prompt_sources(CATS, 'batch', torch.Generator().manual_seed(seed))
        assert fallbacks == 0 and sources[2][1] == (2, 1)  # category 3: only sample 2 has it
        assert sources[0][0] in {(0, 0), (3, 0)}
        seen.add(sources[0][0])
    assert seen == {(0, 0), (3, 0)}
    a = prompt_sources(CATS, 'batch', torch.Generator().manual_seed(5))
    assert a == prompt_sources(CATS, 'batch', torch.Generator().manual_seed(5))


def test_bad_mode():
    with pytest.raises(ValueError, match='prompt source must be one of'):
        prompt_sources(CATS, 'other_image')
