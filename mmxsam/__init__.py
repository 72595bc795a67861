"""mmxsam: X-SAM as an OpenMMLab (mmdet 3.x) plugin.

Importing this package registers every mmxsam module into mmdet's registries (``MODELS``,
``DATASETS``, ``TRANSFORMS``, ``METRICS``, ...) and installs the allow-list that lets mmengine
checkpoints load with ``torch.load(weights_only=True)``. Configs opt in with::

    default_scope = 'mmdet'
    custom_imports = dict(imports=['mmxsam'], allow_failed_imports=False)
"""
from .version import __version__
from .utils.deepspeed_checkpoint import register_deepspeed_checkpoint_scheme
from .utils.last_checkpoint import register_last_checkpoint_scheme
from .utils.safe_load import register_safe_globals

register_safe_globals()
register_last_checkpoint_scheme()
register_deepspeed_checkpoint_scheme()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration side effects)

__all__ = ['__version__', 'register_safe_globals']
