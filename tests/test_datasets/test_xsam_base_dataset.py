"""XSAMBaseDataset: training draws a conversation per read (seeded), evaluation is fixed."""
import numpy as np
import pytest

from mmxsam.datasets import XSAMBaseDataset

QUESTIONS = ('q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7')


class _Toy(XSAMBaseDataset):
    TASK = 'genseg'

    def load_data_list(self):
        return [dict(img_path=None, img_id=i, height=4, width=4) for i in range(3)]

    def build_conversation(self, info, rng):
        q = QUESTIONS[0] if rng is None else QUESTIONS[rng.randint(len(QUESTIONS))]
        info['conversations'] = [{'from': 'human', 'value': q}, {'from': 'gpt', 'value': '<SEG>.'}]
        return info


def _questions(ds, n=20):
    return [ds[i % len(ds)]['conversations'][0]['value'] for i in range(n)]


def test_fixed_mode_in_test_mode_and_record_defaults():
    ds = _Toy(test_mode=True, serialize_data=False)
    assert ds.prompt_mode == 'fixed'
    assert set(_questions(ds)) == {'q0'}
    assert ds[0]['task'] == 'genseg' and ds[0]['source'] == '_Toy'


def test_random_mode_varies_per_read_and_follows_the_seed():
    ds = _Toy(serialize_data=False, source_name='toy')
    np.random.seed(1024)
    first = _questions(ds)
    np.random.seed(1024)
    assert _questions(ds) == first  # reproducible with the run's seed
    assert len(set(first)) > 1  # drawn again at every read
    assert ds[0]['source'] == 'toy'


def test_bad_arguments():
    with pytest.raises(ValueError, match='prompt_mode must be one of'):
        _Toy(prompt_mode='sometimes')

    class _NoTask(XSAMBaseDataset):
        def load_data_list(self):
            return []
    with pytest.raises(TypeError, match='must set the class attribute TASK'):
        _NoTask()


def test_a_record_without_conversation_builder_is_refused():
    class _Bare(XSAMBaseDataset):
        TASK = 'refseg'

        def load_data_list(self):
            return [dict(img_path=None, img_id=0)]
    with pytest.raises(NotImplementedError, match='must build conversations for task refseg'):
        _Bare(serialize_data=False)[0]
