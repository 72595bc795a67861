"""Reading annotation files with errors that name the file (and the config key that points at it).

``json.load`` reports a malformed file as ``Expecting value: line 1 column 13 (char 12)`` and a missing key
of a record as ``KeyError: 'images'``: neither says which of the dozen annotation files of a stage-3 mix is
at fault. These helpers put the path (and the record) into the message.
"""
import json
from typing import Any, Iterable, Optional, Type

from mmengine.fileio import get_text


def load_json(path: str, backend_args: Optional[dict] = None, key: str = 'ann_file',
              expect: Optional[Type] = None, what: str = 'annotation file') -> Any:
    """Load the JSON file ``path``.

    Args:
        path (str): file path or URI (read through mmengine's file backends).
        backend_args (dict, optional): mmengine file backend arguments.
        key (str): the config key that names the file, quoted in the messages. Defaults to ``'ann_file'``.
        expect (type, optional): the type the top level must have (``list`` or ``dict``).
        what (str): what the file is, for the messages.

    Raises:
        FileNotFoundError: the file does not exist (the message names the path and ``key``).
        ValueError: the file is not valid JSON (path, line and column), or its top level is not ``expect``.
    """
    try:
        text = get_text(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'{what} not found: {path} (set by `{key}`)') from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: this {what} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})') \
            from None
    if expect is not None and not isinstance(data, expect):
        raise ValueError(f'{path}: the top level of this {what} must be a {expect.__name__}, '
                         f'got {type(data).__name__}')
    return data


def require_keys(record: Any, keys: Iterable[str], where: str) -> None:
    """Raise a ``ValueError`` naming ``where`` if ``record`` is not a dict holding every one of ``keys``."""
    if not isinstance(record, dict):
        raise ValueError(f'{where}: expected a dict, got {type(record).__name__}')
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(f'{where}: missing key(s) {missing} (it has {sorted(record)})')
