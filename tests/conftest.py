import os
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """A small synthetic data set shared by the whole session (read-only for tests)."""
    from mmxsam.datasets.synthetic import ShapesConfig, generate_shapes_dataset
    root = str(tmp_path_factory.mktemp('shapes'))
    generate_shapes_dataset(root, ShapesConfig(num_train=24, num_val=12, seed=3), progress=False)
    return root


@pytest.fixture
def in_repo_root(monkeypatch):
    """Run from the repository root (configs use relative paths such as ``data/shapes/``)."""
    monkeypatch.chdir(REPO_ROOT)
    return REPO_ROOT


def pytest_configure(config):
    # keep threads low: CI machines have 2 cores
    os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(scope='session')
def tiny_tokenizer_dir(shapes_root, tmp_path_factory):
    """The tiny Phi-3-style tokenizer trained on the session's synthetic data (HF folder)."""
    import glob
    from mmxsam.models.language import EXTRA_CORPUS, build_tiny_tokenizer, iter_json_strings
    out = str(tmp_path_factory.mktemp('tokenizer'))
    files = sorted(glob.glob(os.path.join(shapes_root, '**', '*.json'), recursive=True))
    build_tiny_tokenizer(list(iter_json_strings(files)) + list(EXTRA_CORPUS), out, vocab_size=512)
    return out


@pytest.fixture(scope='session')
def link_shapes_data(shapes_root, tiny_tokenizer_dir):
    """``link_shapes_data(folder)``: make ``folder/data/shapes/`` the session's synthetic data plus the tiny
    tokenizer (links), for tools and configs that read the relative path ``data/shapes``; returns ``folder``."""
    def link(folder):
        data = folder / 'data' / 'shapes'
        data.mkdir(parents=True)
        for entry in os.listdir(shapes_root):
            os.symlink(os.path.join(shapes_root, entry), data / entry)
        os.symlink(tiny_tokenizer_dir, data / 'tokenizer')
        return folder
    return link


@pytest.fixture
def shapes_workdir(tmp_path, link_shapes_data):
    """``tmp_path`` with ``data/shapes/`` linked (see ``link_shapes_data``)."""
    return link_shapes_data(tmp_path)
