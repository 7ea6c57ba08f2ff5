"""Block list and outbound caller-ID routing: the two actions a newCall can get.

Zammad reads both from ``cti_config`` (``app/models/cti/driver/base.rb``,
``reject_check`` and ``caller_id_rewrite``): ``inbound.block_caller_ids``
(reject when ``from`` equals a ``caller_id`` character for character) and
``outbound.routing_table`` plus ``outbound.default_caller_id`` (dial out with
the first matching row's caller ID, else the default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .errors import CtiError
from .ruby import blank

REJECT_ANSWER = {"action": "reject", "reason": "busy"}


@lru_cache(maxsize=1024)
def dest_pattern(dest: str) -> re.Pattern[str]:
    """A routing row's ``dest`` as Zammad builds it: ``to.match?(/^#{dest.gsub('*', '.+?')}$/)``.

    Only ``*`` is replaced; nothing is escaped, so ``.`` and ``+`` keep their
    regular-expression meaning, and ``^``/``$`` are Ruby's line anchors
    (``re.MULTILINE``). A ``dest`` that is no valid pattern raises ``re.error``.
    """
    return re.compile("^" + dest.replace("*", ".+?") + "$", re.MULTILINE)


def blocked_entry(cti_config: Mapping[str, Any], from_number: Any) -> Mapping[str, Any] | None:
    """The block-list row that ``from`` equals exactly, if any."""
    inbound = cti_config.get("inbound") or {}
    for row in inbound.get("block_caller_ids") or ():
        if row.get("caller_id") == from_number:
            return row
    return None


def outbound_route(cti_config: Mapping[str, Any], to_number: Any) -> tuple[Any, Mapping[str, Any] | None] | None:
    """The caller ID an outbound call to ``to`` goes out with, and the routing row that chose it.

    Returns ``None`` when nothing applies (blank ``to``, no match and no
    default); the row is ``None`` when the default caller ID applies. Raises
    :class:`CtiError` where Zammad's code raises (a 500): a ``to`` that is no
    string (Ruby has no ``Integer#match?``), a row without ``dest``, a
    ``dest`` that is no valid pattern. Rows are tried in order, so a broken
    row after the matching one is never reached, as in Zammad.
    """
    if blank(to_number):
        return None
    outbound = cti_config.get("outbound")
    outbound = outbound if isinstance(outbound, Mapping) else {}
    for row in outbound.get("routing_table") or ():
        dest = row.get("dest")
        if not isinstance(dest, str):
            raise CtiError("internal-error", f"routing row {row!r} has no dest (Zammad: NoMethodError gsub on nil)")
        if not isinstance(to_number, str):
            raise CtiError("internal-error", f"to is {to_number!r}, not a string: Zammad calls to.match? on it "
                                             "(NoMethodError), a 500")
        try:
            pattern = dest_pattern(dest)
        except re.error as exc:
            raise CtiError("internal-error", f"routing row dest {dest!r} is no valid regular expression once Zammad "
                                             f"replaces * with .+? ({exc}): RegexpError, a 500") from None
        if pattern.search(to_number):
            return row.get("caller_id"), row
    default = outbound.get("default_caller_id")
    if not blank(default):
        return default, None
    return None


def dial_answer(caller_id: Any, number: Any) -> dict[str, Any]:
    """The body Zammad sends for a rewritten outbound caller ID (``caller_id``, not ``callerId``)."""
    return {"action": "dial", "caller_id": caller_id, "number": number}
