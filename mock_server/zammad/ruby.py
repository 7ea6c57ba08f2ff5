"""Ruby's and Rails' ways with values that Zammad's rules depend on: ``blank?``, ``to_s``, ``||``."""

from __future__ import annotations

from typing import Any


def blank(value: Any) -> bool:
    """Rails' ``blank?``: nil, false, empty or whitespace-only."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (dict, list, tuple)):
        return not value
    return False


def truthy(value: Any) -> bool:
    """Ruby's truth: everything but nil and false (``""`` and ``0`` are true)."""
    return value is not None and value is not False


def to_s(value: Any) -> str | None:
    """A value as a Rails string column casts it: a JSON number 4930 -> "4930", true -> "t".

    Arrays and hashes are stored as Ruby prints them, so the caller log only ever holds strings.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    return inspect(value) if isinstance(value, (list, dict)) else str(value)


def inspect(value: Any, depth: int = 0) -> str:
    """Ruby's ``inspect`` of parsed parameters (strings, numbers, arrays, hashes, nil)."""
    if depth > 40:  # deeper than any PBX sends; the column gets a cut-off text, never a crash
        return "..."
    if isinstance(value, dict):
        return "{" + ", ".join(f"{inspect(k, depth + 1)}=>{inspect(v, depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(inspect(item, depth + 1) for item in value) + "]"
    if value is None:
        return "nil"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return to_s(value)
