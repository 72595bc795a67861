"""The parameters that train under a config, and checkpoints reduced to them (trainable-only weight export).

A stage-2 checkpoint holds the whole 4.6B-parameter model although only the two projectors (35M) trained;
the frozen rest comes from the hub and stage 1 anyway. :func:`trainable_parameter_names` builds the config's
model on the ``meta`` device (no memory, no weights loaded, ``init_cfg`` not run) and reads ``requires_grad``
after the model's own freezing (``llm.freeze``, ``frozen_modules``, never-run parts).
"""
from typing import Dict, List, Set, Tuple

import torch


def trainable_parameter_names(config) -> Set[str]:
    """Names of the parameters with ``requires_grad`` in the model of ``config`` (a path or a ``Config``).

    The model is built under ``torch.device('meta')``; hub models named by ``name_or_path`` must be
    readable (their config files) as for training.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model.copy()
    model_cfg.pop('init_cfg', None)
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    if not names:
        raise ValueError(f'no parameter trains in the model of {getattr(cfg, "filename", config)}')
    return names


def select_trainable(state_dict: Dict[str, torch.Tensor], names: Set[str],
                     source: str = 'the config') -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``(kept, dropped)``: the entries of ``state_dict`` named in ``names`` and the other keys (sorted).

    Raises ``KeyError`` naming (up to 10 of) the trainable parameters the state dict lacks: a checkpoint of
    another model or stage.
    """
    missing = sorted(names - set(state_dict))
    if missing:
        raise KeyError(f'{len(missing)} parameter(s) that train under {source} are not in the checkpoint, e.g. '
                       f'{missing[:10]}')
    kept = {k: v for k, v in state_dict.items() if k in names}
    return kept, sorted(set(state_dict) - names)
