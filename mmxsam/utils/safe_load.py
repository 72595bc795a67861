"""Safe loading of mmengine checkpoints under ``torch.load(weights_only=True)``.

torch >= 2.6 defaults ``torch.load`` to ``weights_only=True``; mmengine 0.10.7 calls ``torch.load``
without the argument, so ``Runner.resume`` fails on the objects mmengine itself pickles into a
checkpoint's ``meta`` (the message hub's ``HistoryBuffer`` logs, numpy arrays and scalars).

Instead of turning arbitrary unpickling back on (``weights_only=False`` executes any code a
checkpoint file names), :func:`register_safe_globals`

1. adds the *few* classes and functions that mmengine checkpoints contain to torch's allow-list
   (``torch.serialization.add_safe_globals``): ``HistoryBuffer`` and numpy arrays/scalars/dtypes;
2. stops ``HistoryBuffer`` from pickling its statistics-method table. mmengine pickles
   ``HistoryBuffer.min`` & co. by reference, which pickle encodes as a call to ``builtins.getattr``;
   allow-listing ``getattr`` would re-open arbitrary code execution (chained ``getattr`` reaches any
   module's globals). The table is class-level and ``HistoryBuffer.__setstate__`` rebuilds the default
   methods anyway, so nothing is lost: custom methods registered with ``register_statistics`` live on
   the class and exist once their module is imported.

Anything else in a checkpoint still makes ``torch.load`` raise ``UnpicklingError``. Checkpoints written
by a plain mmengine run (without this package imported) contain the ``getattr`` call and are refused
too; :func:`unsafe_globals_in` lists what a file would need.
"""
from typing import Any, Callable, List

import numpy as np
import torch

_REGISTERED = False

# numpy dtypes whose classes may appear in pickled arrays / scalars (e.g. logged losses).
_NUMPY_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
                 'float16', 'float32', 'float64', 'complex64', 'complex128', 'str', 'bytes', 'object')


def _numpy_reconstruct() -> List[Callable]:
    """``numpy.core.multiarray._reconstruct`` and ``scalar`` under their numpy 1.x and 2.x paths."""
    funcs = []
    for modname in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            mod = __import__(modname, fromlist=['_reconstruct'])
        except ImportError:  # pragma: no cover - depends on the numpy major version
            continue
        for name in ('_reconstruct', 'scalar'):
            fn = getattr(mod, name, None)
            if fn is not None and fn not in funcs:
                funcs.append(fn)
    return funcs


def mmengine_safe_globals() -> List[Any]:
    """The objects an mmengine (0.10.x) checkpoint pickles besides tensors and builtin containers."""
    from mmengine.logging import HistoryBuffer

    safe: List[Any] = [HistoryBuffer, np.ndarray, np.dtype]
    safe += _numpy_reconstruct()
    for name in _NUMPY_DTYPES:
        dtype = np.dtype(name)
        safe.append(type(dtype))  # e.g. numpy.dtypes.Float64DType
        if name not in ('str', 'bytes', 'object'):
            safe.append(dtype.type)  # e.g. numpy.float64 (numpy scalar results of metrics)
    # deduplicate while keeping order
    out: List[Any] = []
    for obj in safe:
        if obj not in out:
            out.append(obj)
    return out


def _history_buffer_getstate(self) -> dict:
    """``HistoryBuffer.__getstate__`` without the statistics-method table (see the module docstring)."""
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


def register_safe_globals() -> None:
    """Make mmengine checkpoints load under ``torch.load(weights_only=True)`` (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from mmengine.logging import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no weights_only default to fight with
        add(mmengine_safe_globals())
    _REGISTERED = True


def unsafe_globals_in(path: str) -> List[str]:
    """Names of the globals in checkpoint ``path`` that ``weights_only=True`` would still reject."""
    allowed = {f'{g.__module__}.{g.__qualname__}' for g in mmengine_safe_globals()}
    allowed |= {f'{g.__module__}.{g.__name__}' for g in torch.serialization.get_safe_globals()
                if hasattr(g, '__name__')}
    found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    return [name for name in found if name not in allowed]
