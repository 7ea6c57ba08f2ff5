"""Block list and outbound caller-ID routing: the two actions a newCall can get.

Zammad reads both from ``cti_config``: ``inbound.block_caller_ids`` (reject
when ``from`` equals a ``caller_id`` character for character) and
``outbound.routing_table`` plus ``outbound.default_caller_id`` (dial out with
the first matching row's caller ID, else the default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

REJECT_ANSWER = {"action": "reject", "reason": "busy"}


@lru_cache(maxsize=1024)
def dest_pattern(dest: str) -> re.Pattern[str]:
    """A routing row's ``dest`` as Zammad matches it: anchored, ``*`` = one or more characters.

    Zammad substitutes ``.+`` for ``*`` in a Ruby regexp; other characters are
    taken literally here (Zammad would read a ``.`` or ``+`` in ``dest`` as
    regexp syntax, which no sane routing table relies on).
    """
    return re.compile("".join(".+" if ch == "*" else re.escape(ch) for ch in dest) + r"\Z")


def blocked_entry(cti_config: Mapping[str, Any], from_number: Any) -> Mapping[str, Any] | None:
    """The block-list row that ``from`` equals exactly, if any."""
    inbound = cti_config.get("inbound") or {}
    for row in inbound.get("block_caller_ids") or ():
        if row.get("caller_id") == from_number:
            return row
    return None


def outbound_route(cti_config: Mapping[str, Any], to_number: Any) -> tuple[str, Mapping[str, Any] | None] | None:
    """The caller ID an outbound call to ``to`` goes out with, and the routing row that chose it.

    Returns ``None`` when nothing applies (blank ``to``, no match and no
    default); the row is ``None`` when the default caller ID applies.
    """
    if not isinstance(to_number, str) or not to_number.strip():
        return None
    outbound = cti_config.get("outbound") or {}
    for row in outbound.get("routing_table") or ():
        dest = row.get("dest")
        if isinstance(dest, str) and dest_pattern(dest).match(to_number):
            return row.get("caller_id"), row
    default = outbound.get("default_caller_id")
    if default:
        return default, None
    return None


def dial_answer(caller_id: str, number: str) -> dict[str, str]:
    """The body Zammad sends for a rewritten outbound caller ID (``caller_id``, not ``callerId``)."""
    return {"action": "dial", "caller_id": caller_id, "number": number}
