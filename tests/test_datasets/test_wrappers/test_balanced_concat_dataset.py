import math

import pytest
from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset

import mmxsam  # noqa: F401
from mmxsam.datasets.wrappers import BalancedConcatDataset


class _ToySource(BaseDataset):
    """n in-memory samples ``{'source': name, 'i': i}``; counts annotation loads."""

    def __init__(self, name: str = 'toy', n: int = 4, **kwargs):
        self.name, self.n, self.loads = name, n, 0
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        self.loads += 1
        return [dict(source=self.name, i=i) for i in range(self.n)]


DATASETS.register_module(name='_ToyBalancedSource', module=_ToySource, force=True)


def _build(sizes, **kwargs):
    return BalancedConcatDataset([_ToySource(f's{k}', n) for k, n in enumerate(sizes)], **kwargs)


def test_repeat_factors_and_lengths_match_hand_computed_values():
    ds = _build([1000, 100, 10], oversample_thr=0.1)
    # f = 1000/1110, 100/1110, 10/1110 -> r = max(1, sqrt(0.1 / f))
    expected = [1.0, math.sqrt(0.1 * 1110 / 100), math.sqrt(0.1 * 1110 / 10)]
    assert ds.repeat_factors == pytest.approx(expected)
    assert ds.repeat_factors[1] == pytest.approx(1.0536, abs=1e-4)
    assert ds.repeat_factors[2] == pytest.approx(3.3317, abs=1e-4)
    assert ds.ori_lengths == [1000, 100, 10]
    assert ds.source_lengths == [1000, 105, 33]
    assert len(ds) == 1138
    assert ds.source_indices == [range(0, 1000), range(1000, 1105), range(1105, 1138)]
    # a large threshold up-samples everything but the biggest source less
    big = _build([30, 10], oversample_thr=1.0)
    assert big.repeat_factors == pytest.approx([math.sqrt(40 / 30), 2.0])
    assert big.source_lengths == [int(30 * math.sqrt(40 / 30)), 20]  # exact product 20 kept despite float noise


def test_indices_wrap_modulo_source_size():
    ds = _build([1000, 100, 10])
    for local in range(33):  # source 2 repeated 3.33x: local index i -> sample i % 10
        item = ds[1105 + local]
        assert item['source'] == 's2' and item['i'] == local % 10
        assert ds.get_data_info(1105 + local)['i'] == local % 10
    assert ds[1000 + 104]['i'] == 4 and ds[1000 + 99]['i'] == 99
    assert ds.source_of(0) == 0 and ds.source_of(999) == 0 and ds.source_of(1000) == 1
    assert ds.source_of(1104) == 1 and ds.source_of(1105) == 2 and ds.source_of(-1) == 2
    assert ds.get_dataset_source(1137) == 2  # mmdet's name for the same thing
    with pytest.raises(IndexError):
        ds[1138]


def test_empty_source_is_skipped_and_counted():
    ds = _build([5, 0, 20])
    assert ds.num_skipped_sources == 1
    assert ds.source_lengths[1] == 0 and ds.repeat_factors[1] == 1.0
    assert ds.source_indices[1] == range(ds.source_lengths[0], ds.source_lengths[0])
    assert {ds.source_of(i) for i in range(len(ds))} == {0, 2}  # nothing lands in the empty source
    assert 'n=0' in repr(ds) and '1 empty source(s) skipped' in repr(ds)


def test_bad_inputs():
    for thr in (0, -0.1, None):
        with pytest.raises(ValueError, match='oversample_thr'):
            _build([3, 4], oversample_thr=thr)
    with pytest.raises(ValueError, match='all 2 sub-datasets are empty'):
        _build([0, 0])
    with pytest.raises(ValueError, match='at least one'):
        BalancedConcatDataset([])
    with pytest.raises(ValueError, match='source_names'):
        _build([3, 4], source_names=['only-one'])


def test_repr_lists_every_source():
    ds = _build([1000, 100, 10], source_names=['coco', 'refcoco', 'reason'])
    text = repr(ds)
    assert 'refcoco: n=100, f=0.0901, r=1.054, length=105' in text
    assert 'reason: n=10, f=0.0090, r=3.332, length=33' in text
    assert '1110 samples -> 1138 after resampling' in text


def test_built_from_config_with_lazy_init():
    cfg = dict(type='BalancedConcatDataset', oversample_thr=0.1, lazy_init=True,
               datasets=[dict(type='_ToyBalancedSource', name='a', n=90, lazy_init=True),
                         dict(type='_ToyBalancedSource', name='b', n=10, lazy_init=True)])
    ds = DATASETS.build(cfg)
    assert isinstance(ds, BalancedConcatDataset)
    assert [d.loads for d in ds.datasets] == [0, 0]  # nothing loaded yet
    assert 'not fully initialized' in repr(ds)
    assert ds.source_lengths == [90, 10]  # sqrt(0.1 / 0.1) = 1 -> no repeat; triggers full_init
    assert [d.loads for d in ds.datasets] == [1, 1]
    assert len(ds) == 100 and ds[95]['source'] == 'b'


def test_first_source_without_the_metainfo_keys_of_later_ones():
    """A conversation source (no classes) before segmentation sources (with classes): mmdet 3.3's
    ConcatDataset raised KeyError; the mix keeps every source's metainfo, in order."""
    chat = _ToySource('chat', 3)
    seg = _ToySource('seg', 5, metainfo=dict(classes=('circle', 'sky')))
    ds = BalancedConcatDataset([chat, seg], oversample_thr=0.1)
    assert ds.metainfo == [chat.metainfo, seg.metainfo]
    assert len(ds) == sum(ds.source_lengths) and ds[0]['source'] == 'chat'
