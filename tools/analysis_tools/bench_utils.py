"""Helpers shared by the analysis tools ``plan_memory.py``, ``benchmark_train_step.py`` and
``benchmark_inference.py``: strict ``--cfg-options``, data-root / tokenizer overrides, the full-size hub
architectures (for building ``name_or_path`` configs on the meta device), parameter counting.

Nothing here is imported by training; the tools put this folder on ``sys.path`` themselves.
"""
import copy
import json
import os
import os.path as osp
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction

#: The public architectures of the hub models the configs name (``config.json`` of each hub repository).
#: The hub is not reachable here, so a ``name_or_path`` is replaced by its architecture to build the model on
#: the meta device. ``tokenizer_len`` is the tokenizer's length before X-SAM's 3 tokens (the LLM embeddings
#: are resized to ``tokenizer_len + 3``). The first four are the ones tests/test_configs/test_xsam_configs.py
#: checks against the paper's parameter counts.
HUB_ARCHITECTURES: Dict[str, dict] = {
    'microsoft/Phi-3-mini-4k-instruct': dict(
        config=dict(model_type='phi3', hidden_size=3072, num_hidden_layers=32, num_attention_heads=32,
                    intermediate_size=8192, vocab_size=32064, max_position_embeddings=4096),
        tokenizer_len=32011),
    'google/siglip2-so400m-patch14-384': dict(
        config=dict(model_type='siglip_vision_model', hidden_size=1152, num_hidden_layers=27,
                    num_attention_heads=16, intermediate_size=4304, image_size=384, patch_size=14)),
    'google/siglip-so400m-patch14-384': dict(
        config=dict(model_type='siglip_vision_model', hidden_size=1152, num_hidden_layers=27,
                    num_attention_heads=16, intermediate_size=4304, image_size=384, patch_size=14)),
    'facebook/sam-vit-large': dict(
        config=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, mlp_dim=4096, image_size=1024,
                    patch_size=16, window_size=14, global_attn_indexes=[5, 11, 17, 23], output_channels=256)),
    'openai/clip-vit-large-patch14-336': dict(
        config=dict(model_type='clip_vision_model', hidden_size=1024, num_hidden_layers=24,
                    num_attention_heads=16, intermediate_size=4096, image_size=336, patch_size=14)),
    'Qwen/Qwen3-4B-Instruct-2507': dict(
        config=dict(model_type='qwen3', hidden_size=2560, num_hidden_layers=36, num_attention_heads=32,
                    num_key_value_heads=8, head_dim=128, intermediate_size=9728, vocab_size=151936,
                    max_position_embeddings=262144, tie_word_embeddings=True),
        tokenizer_len=151669),
    'lmsys/vicuna-7b-v1.5': dict(
        config=dict(model_type='llama', hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                    intermediate_size=11008, vocab_size=32000, max_position_embeddings=4096),
        tokenizer_len=32000),
}

GENERATE_HINT = 'python tools/dataset_converters/generate_shapes.py data/shapes'
TOKENIZER_HINT = 'python tools/misc/build_tiny_tokenizer.py data/shapes --out data/shapes/tokenizer'


@contextmanager
def stdout_to_stderr(enabled: bool = True):
    """Send everything written to the stdout file descriptor (library logs, also from handlers created at
    import time) to stderr, so that stdout carries only the tool's result (``--json``)."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class CommandLineError(ValueError):
    """A bad command-line argument (reported without a traceback by the tools)."""


def run_tool(name: str, argv, parse_args: Callable, compute: Callable, format_text: Callable) -> int:
    """The shared ``main`` of the analysis tools: parse, compute (library logs kept off stdout with ``--json``),
    write ``--out`` as JSON, print JSON or the tables. A :class:`CommandLineError` prints
    ``NAME: error: ...`` and returns 2 (no traceback)."""
    try:
        args = parse_args(argv)
        with stdout_to_stderr(args.json):
            result = compute(args)
    except CommandLineError as err:
        print(f'{name}: error: {err}', file=sys.stderr)
        return 2
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2) if args.json else format_text(result))
    return 0


# ----------------------------------------------------------------------------------------------- configs
def add_cfg_options(parser) -> None:
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config keys, e.g. model.llm.gradient_checkpointing=False; every key '
                        'must exist in the config (a typo is an error, not a new key)')


def _has_key(cfg: Any, dotted: str) -> Tuple[bool, str]:
    node = cfg
    parts = dotted.split('.')
    for i, part in enumerate(parts):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            where = '.'.join(parts[:i]) or '<top level>'
            keys = sorted(node) if isinstance(node, Mapping) else None
            hint = f'; keys there: {keys}' if keys is not None else ''
            return False, f'{where} has no key {part!r}{hint}'
    return True, ''


def _registered_arguments(type_name: str) -> Optional[set]:
    """Constructor arguments of a registered ``type`` (None: unknown type or ``**kwargs``: anything goes)."""
    import inspect

    import mmxsam  # noqa: F401  (registration)
    from mmdet import registry as reg
    for name in ('MODELS', 'DATASETS', 'TRANSFORMS', 'DATA_SAMPLERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS', 'HOOKS',
                 'METRICS', 'PARAM_SCHEDULERS', 'TASK_UTILS', 'LOOPS'):
        cls = getattr(reg, name).get(type_name) if isinstance(type_name, str) else None
        if cls is None:
            continue
        if not inspect.isclass(cls):
            return None
        names = set()
        for klass in cls.__mro__:  # **kwargs are passed on to the parents: collect their arguments too
            init = vars(klass).get('__init__')
            if init is None or klass in (torch.nn.Module, object):
                continue
            params = inspect.signature(init).parameters.values()
            names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                break
        return names
    return None


def _check_option(cfg: Mapping, key: str) -> None:
    """A ``--cfg-options`` key must exist in the config, or be an argument of the registered ``type`` of the
    dict it goes into (e.g. ``model.llm.gradient_checkpointing`` for ``HFCausalLM``)."""
    ok, why = _has_key(cfg, key)
    if ok:
        return
    parent_key, _, leaf = key.rpartition('.')
    parent_ok, _ = _has_key(cfg, parent_key) if parent_key else (True, '')
    if parent_ok:
        parent = cfg
        for part in parent_key.split('.') if parent_key else []:
            parent = parent[int(part)] if isinstance(parent, (list, tuple)) else parent[part]
        if isinstance(parent, Mapping) and 'type' in parent:
            accepted = _registered_arguments(parent['type'])
            if accepted is not None and leaf in accepted:
                return
            if accepted is not None:
                why = f"{parent_key} ({parent['type']}) has no key {leaf!r} and takes no such argument"
    raise CommandLineError(f'--cfg-options: unknown config key {key!r} ({why})')


def load_config(path: str, cfg_options: Optional[dict] = None, data_root: Optional[str] = None,
                tokenizer: Optional[str] = None) -> Config:
    """``Config.fromfile`` plus ``--cfg-options`` whose keys must exist (or be arguments of their dict's
    registered ``type``): a typo is an error, not a silently added key. Then the tools' ``--data-root``
    (:func:`override_data_root`) and ``--tokenizer`` (a folder, :func:`override_tokenizer`) when given."""
    if not osp.isfile(path):
        raise CommandLineError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    for key in (cfg_options or {}):
        _check_option(cfg._cfg_dict, key)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root:
        override_data_root(cfg, data_root)
    if tokenizer:
        if not osp.isdir(tokenizer):
            raise CommandLineError(f'--tokenizer: folder not found: {tokenizer}')
        override_tokenizer(cfg, tokenizer)
    return cfg


def _replace_strings(node: Any, old: str, new: str) -> Any:
    if isinstance(node, str):
        return new + node[len(old):] if node.startswith(old) else node
    if isinstance(node, Mapping):
        for k in list(node.keys()):
            node[k] = _replace_strings(node[k], old, new)
        return node
    if isinstance(node, list):
        return [_replace_strings(v, old, new) for v in node]
    if isinstance(node, tuple):
        return tuple(_replace_strings(v, old, new) for v in node)
    return node


def override_data_root(cfg: Config, data_root: str) -> None:
    """Point every path under the config's ``data_root`` (e.g. ``data/shapes/``) at ``data_root``."""
    old = cfg.get('data_root')
    if not old:
        raise CommandLineError('--data-root: the config has no top-level data_root to replace')
    new = data_root.rstrip('/') + '/'
    for key in list(cfg.keys()):
        if key != 'data_root':
            cfg[key] = _replace_strings(cfg[key], old, new)
    cfg.data_root = new


def _tokenizer_dicts(node: Any) -> Iterable[dict]:
    if isinstance(node, Mapping):
        tok = node.get('tokenizer')
        if isinstance(tok, Mapping) and 'name_or_path' in tok:
            yield tok
        for v in node.values():
            yield from _tokenizer_dicts(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _tokenizer_dicts(v)


def override_tokenizer(cfg: Config, tokenizer: str) -> int:
    """Set ``name_or_path`` of every ``tokenizer=dict(...)`` (model and pipelines); returns how many."""
    n = 0
    for tok in _tokenizer_dicts(cfg._cfg_dict):
        tok['name_or_path'] = tokenizer
        n += 1
    return n


# ----------------------------------------------------------------------------------------------- models
class SizedTokenizer:
    """A tokenizer of a given length for building a model whose real tokenizer is not available here (hub
    only): the tiny Phi-3-style tokenizer (``build_tiny_tokenizer`` on its built-in corpus, plus the chat
    template's stop words) whose ``len`` is shifted to ``length``. Only the length reaches the model (its
    embedding rows); token ids are the tiny tokenizer's, so it is for building/planning, never for text."""

    def __init__(self, inner, length: int) -> None:
        self._inner = inner
        self._offset = length - len(inner)

    def __len__(self) -> int:
        return len(self._inner) + self._offset

    def __getattr__(self, name):
        return getattr(self._inner, name)


_TINY_TOKENIZER_DIR: Optional[str] = None


def sized_tokenizer(length: int, stop_words: Iterable[str] = ()) -> SizedTokenizer:
    global _TINY_TOKENIZER_DIR
    from transformers import AutoTokenizer

    from mmxsam.models.language import EXTRA_CORPUS, build_tiny_tokenizer
    if _TINY_TOKENIZER_DIR is None:
        _TINY_TOKENIZER_DIR = tempfile.mkdtemp(prefix='xsam_tokenizer_')
        build_tiny_tokenizer(list(EXTRA_CORPUS), _TINY_TOKENIZER_DIR, vocab_size=512)
    inner = AutoTokenizer.from_pretrained(_TINY_TOKENIZER_DIR)
    missing = [w for w in stop_words if len(inner.encode(w, add_special_tokens=False)) != 1]
    if missing:
        inner.add_tokens(missing, special_tokens=True)
    return SizedTokenizer(inner, length)


def _loadable(name_or_path: str) -> bool:
    return osp.isdir(name_or_path)


def resolve_hub_models(model_cfg: ConfigDict) -> List[str]:
    """Replace every ``name_or_path`` of the model config that is not a local folder by its architecture
    (:data:`HUB_ARCHITECTURES`) and every unavailable tokenizer by a :class:`SizedTokenizer` of the real
    length. Returns what was replaced (to print). Unknown hub ids are an error naming them."""
    from mmxsam.models.language import get_chat_template
    notes = []
    for key in ('llm', 'vision_encoder', 'backbone'):
        sub = model_cfg.get(key)
        if not isinstance(sub, Mapping) or 'name_or_path' not in sub:
            continue
        name = sub['name_or_path']
        if _loadable(name):
            from transformers import AutoConfig
            sub.pop('name_or_path')
            sub['config'] = AutoConfig.from_pretrained(name)
            notes.append(f'{key}: architecture from {name}/config.json (no weights read)')
            continue
        if name not in HUB_ARCHITECTURES:
            raise CommandLineError(
                f'model.{key}.name_or_path={name!r} is neither a local folder nor a known hub architecture '
                f'({sorted(HUB_ARCHITECTURES)}); give a folder with its config.json via --cfg-options '
                f'model.{key}.name_or_path=FOLDER')
        sub.pop('name_or_path')
        sub['config'] = copy.deepcopy(HUB_ARCHITECTURES[name]['config'])
        for k in ('torch_dtype', ):
            sub.pop(k, None)
        notes.append(f'{key}: {name} built from its architecture (HUB_ARCHITECTURES), random weights')
    llm = model_cfg.get('llm')
    if isinstance(llm, Mapping) and isinstance(llm.get('tokenizer'), Mapping):
        name = llm['tokenizer'].get('name_or_path')
        if isinstance(name, str) and not _loadable(name):
            if name in HUB_ARCHITECTURES and 'tokenizer_len' in HUB_ARCHITECTURES[name]:
                length = HUB_ARCHITECTURES[name]['tokenizer_len']
                stop = get_chat_template(llm.get('chat_template', 'phi3')).stop_words
                llm['tokenizer'] = sized_tokenizer(length, stop)
                notes.append(f'llm.tokenizer: {name} stood in by a tokenizer of its length {length}')
            else:
                hint = f' ({TOKENIZER_HINT})' if 'shapes' in name else ''
                raise CommandLineError(f'tokenizer {name!r} not found{hint}; or pass --tokenizer FOLDER')
    return notes


def count_params(module: Optional[torch.nn.Module]) -> Tuple[int, int]:
    """(all, trainable) parameters, shared parameters counted once."""
    if module is None:
        return 0, 0
    seen, total, train = set(), 0, 0
    for p in module.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        train += p.numel() if p.requires_grad else 0
    return total, train


def top_level_params(model: torch.nn.Module) -> Dict[str, Tuple[int, int]]:
    """{child name: (all, trainable)} for the model's direct children with parameters, largest first."""
    rows = {name: count_params(child) for name, child in model.named_children()}
    rows = {k: v for k, v in rows.items() if v[0] > 0}
    return dict(sorted(rows.items(), key=lambda kv: -kv[1][0]))


def human_bytes(n: float) -> str:
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(n) < 1024 or unit == 'TiB':
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.2f} {unit}'
        n /= 1024
    return f'{n:.2f} TiB'


def markdown_table(header: List[str], rows: List[List[Any]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |', '| ' + ' | '.join('---' for _ in header) + ' |']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)
