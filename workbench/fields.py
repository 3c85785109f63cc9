"""Typed config fields: checking a value against a field's type hint, and naming the closest valid key.

The recipe sections are frozen dataclasses whose type hints are the contract: a TOML value (or
a ``--set`` value, or a Python value given to ``Recipe.with_``) is accepted only when it has
the hinted type. ``16.7`` is not an ``int``, ``"false"`` is not a ``bool``, ``"fast"`` is not a
``float``. The one coercion: an ``int`` where a ``float`` is expected (``lr = 1``).

Example:
    >>> check_value(3, int)
    3
    >>> check_value(1, float)
    1.0
    >>> check_value("false", bool)
    Traceback (most recent call last):
    ...
    workbench.fields.ValueTypeError: expected true or false, got 'false' (text)
    >>> closest("sts_tset", ["sts_dev", "sts_test", "sts_dev_limit"])
    'sts_test'
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Union


class ValueTypeError(ValueError):
    """A value that does not have the type its field asks for; the message says which type."""


def closest(key: str, valid: Iterable[str]) -> str | None:
    """The valid key most like ``key`` (a typo's intended key), or None when none is close."""
    found = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_key_message(key: str, valid: Iterable[str]) -> str:
    """``unknown key 'sts_tset' (did you mean 'sts_test'?)``, or the list of valid keys."""
    valid = sorted(valid)
    guess = closest(key, valid)
    hint = f"did you mean {guess!r}?" if guess else f"valid keys: {', '.join(valid)}"
    return f"unknown key {key!r} ({hint})"


def describe(hint: Any) -> str:
    """A type hint in words, for error messages: ``an integer or nothing``."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return "anything"
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        text = " or ".join(describe(a) for a in members)
        return text if len(members) == len(typing.get_args(hint)) else f"{text} (or left out)"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a number"
    if hint is str or hint is os.PathLike or origin is os.PathLike:
        return "text"
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {describe(args[0])}" if args else "a list"
    if origin in (dict, Mapping) or hint is dict:
        return "a table (key = value pairs)"
    return getattr(hint, "__name__", str(hint))


def _kind(value: Any) -> str:
    names = {bool: "true/false", int: "whole number", float: "number", str: "text", list: "list", tuple: "list",
             dict: "table"}
    return names.get(type(value), type(value).__name__)


def check_value(value: Any, hint: Any) -> Any:
    """``value`` if it has the type ``hint`` says (an int becomes a float where a float is asked
    for; a list becomes a tuple where a tuple is asked for); else :class:`ValueTypeError`."""
    ok, result = _check(value, hint)
    if not ok:
        raise ValueTypeError(f"expected {describe(hint)}, got {value!r} ({_kind(value)})")
    return result


def _check(value: Any, hint: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return True, value
    if origin in (Union, types.UnionType):
        for member in typing.get_args(hint):
            ok, result = _check(value, member)
            if ok:
                return True, result
        return False, None
    if hint is type(None) or hint is None:
        return value is None, None
    if origin is Literal:
        return (value in typing.get_args(hint) and type(value) is not bool), value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if hint is str:
        return isinstance(value, str), value
    if hint is os.PathLike or origin is os.PathLike:
        return isinstance(value, os.PathLike), value
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, None
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        items = []
        for item in value:
            ok, result = _check(item, args[0]) if args else (True, item)
            if not ok:
                return False, None
            items.append(result)
        return True, (list(items) if origin is list or hint is list else tuple(items))
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, Mapping), dict(value) if isinstance(value, Mapping) else None
    if isinstance(hint, type):
        return isinstance(value, hint), value
    return True, value  # a hint this checker does not know: the code that uses the value checks it


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_fields(obj: Any) -> None:
    """Check every field of a (frozen) dataclass instance against its type hint, in place.

    Called from ``__post_init__``: a wrong type fails where the object is made (from a file, a
    ``--set`` or Python), never later inside training. Coerced values (int -> float, list ->
    tuple) are stored back.
    """
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        try:
            checked = check_value(value, hints[f.name])
        except ValueTypeError as err:
            raise ValueTypeError(f"{f.name}: {err}") from None
        if checked is not value:
            object.__setattr__(obj, f.name, checked)


def from_mapping(cls: type, data: Mapping[str, Any]) -> Any:
    """``cls(**data)`` for a dataclass, refusing keys it does not have (naming the closest one)."""
    if not isinstance(data, Mapping):
        raise ValueTypeError(f"expected a table (key = value pairs), got {data!r}")
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in valid:
            raise ValueError(unknown_key_message(key, valid))
    return cls(**data)
