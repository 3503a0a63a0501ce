"""Nested mappings (parsed YAML) checked against typed dataclasses, with errors naming the key.

The one validator behind ``uaes run``'s config (:mod:`uaes_hf.experiments.config`) and
``uaes retrieval run``'s (:mod:`uaes_hf.retrieval.config`). A mapping only names the keys
it overrides; an unknown key or a value of the wrong type is a ``ValueError`` naming the
dotted key, so a typo never falls back to a default silently. Ints widen to floats; bools
are never ints.

Example:
    >>> from dataclasses import field, make_dataclass
    >>> Search = make_dataclass(
    ...     "Search", [("k", int, field(default=10)), ("metric", str | None, field(default=None))]
    ... )
    >>> Config = make_dataclass("Config", [
    ...     ("search", Search, field(default_factory=Search)),
    ...     ("seeds", tuple[int, ...], field(default=(0,))),
    ... ])
    >>> build_dataclass(Config, {"search": {"k": 5}, "seeds": [1, 2]})
    Config(search=Search(k=5, metric=None), seeds=(1, 2))
    >>> build_dataclass(Config, {"search": {"k": "5"}})
    Traceback (most recent call last):
    ...
    ValueError: config key 'search.k' must be an integer, got '5'
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_value(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (lists to tuples
    for ``tuple[...]`` fields, ints to floats, mappings to dataclasses)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return check_value(value, option, key)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(errors[0] if len(errors) == 1 else f"{key}: {'; '.join(errors)}")
    if origin is Literal:
        if value not in args:
            raise ValueError(f"config key {key!r} must be one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"config key {key!r} must be a list, got {type(value).__name__}")
        items = [check_value(item, args[0], f"{key}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"config key {key!r} must be a mapping, got {type(value).__name__}")
        return {
            check_value(name, args[0], f"{key} (a key)"): check_value(
                item, args[1], f"{key}.{name}"
            )
            for name, item in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, key)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config key {key!r} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config key {key!r} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"config key {key!r} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {_type_name(tp)} for {key}")  # pragma: no cover


def build_dataclass(cls: type, data: Any, prefix: str = "") -> Any:
    """``cls`` with its defaults overridden by the mapping ``data`` (``None``: defaults).

    ``prefix`` is the dotted key of ``data`` in the whole config (for messages). A
    ``ValueError`` raised by the dataclass itself (``__post_init__``) is re-raised with
    ``prefix`` in front.
    """
    where = prefix or "the config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ValueError(f"unknown config key {dotted!r}; expected one of: {', '.join(names)}")
        values[key] = check_value(value, hints[key], dotted)
    try:
        return cls(**values)
    except ValueError as err:  # the section's own validation
        raise ValueError(f"{where}: {err}") from None
