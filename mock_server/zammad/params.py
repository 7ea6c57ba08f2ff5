"""Rails parameter folding: how Zammad turns query, form and JSON input into one map.

Rails collects ``user[]=A&user[]=B`` into ``{"user": ["A", "B"]}``, nests
``a[b]=c`` into ``{"a": {"b": "c"}}`` and keeps only the last value of a plain
repeated key (``user=A&user=B`` gives ``"B"``). The query string wins over the
body (Rails: ``request_parameters.merge(query_parameters)``), and the path's
``token`` wins over both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_RUBY_CLASS = {"str": "String", "list": "Array", "dict": "Hash"}
MAX_DEPTH = 32  # Rack refuses parameters nested deeper (ParamsTooDeepError, a 400)


class ParamsTooDeep(ValueError):
    """A key like ``a[b][c]...`` nested deeper than Rack accepts."""


class ParamsConflict(ValueError):
    """``user=a&user[]=b``: Rack's ParameterTypeError (expected Array, got String), a 400 before Zammad runs."""


@dataclass
class FoldedParams:
    """A folded parameter map, and the plain keys that were sent more than once."""

    values: dict[str, Any] = field(default_factory=dict)
    repeated_keys: list[str] = field(default_factory=list)


def _split_key(key: str) -> list[str]:
    """``user[]`` -> ["user", ""]; ``a[b][c]`` -> ["a", "b", "c"]; ``from`` -> ["from"]."""
    head, bracket, _ = key.partition("[")
    if not bracket or not head:
        return [key]
    rest = key[len(head):]
    parts = _BRACKETS.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        return [key]  # not well-formed Rails brackets: Rails keeps it verbatim too
    return [head, *parts]


def fold_pairs(pairs: Iterable[tuple[str, Any]]) -> FoldedParams:
    """Fold (key, value) pairs as Rails does."""
    folded = FoldedParams()
    seen_plain: set[str] = set()
    for key, value in pairs:
        path = _split_key(key)
        if len(path) > MAX_DEPTH:
            raise ParamsTooDeep(f"the parameter {key[:40]!r}... is nested {len(path)} levels deep; Rack accepts {MAX_DEPTH}")
        if len(path) == 1:
            if key in seen_plain and key not in folded.repeated_keys:
                folded.repeated_keys.append(key)
            seen_plain.add(key)
            folded.values[key] = value
            continue
        _assign(folded.values, path, value)
    return folded


def _assign(target: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = target
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        nxt = path[depth + 1] if not last else None
        if last:
            node[part] = value
            return
        if nxt == "":
            current = node.get(part)
            if current is not None and not isinstance(current, list):
                raise ParamsConflict(f"expected Array (got {_RUBY_CLASS[type(current).__name__]}) for param `{part}'")
            if current is None:
                current = node[part] = []
            if depth + 1 == len(path) - 1:
                current.append(value)
                return
            # ``a[][b]=1``: an array of hashes; Rack adds to the last hash until a key repeats.
            rest = path[depth + 2:]
            if not current or not isinstance(current[-1], dict) or rest[0] in current[-1]:
                current.append({})
            _assign(current[-1], rest, value)
            return
        child = node.get(part)
        if child is not None and not isinstance(child, dict):
            raise ParamsConflict(f"expected Hash (got {_RUBY_CLASS[type(child).__name__]}) for param `{part}'")
        if child is None:
            child = node[part] = {}
        node = child


def merge_params(query: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Rails' ``params`` (``ActionDispatch::Http::Parameters#parameters``): the query string wins."""
    merged = dict(body)
    merged.update(query)
    return merged
