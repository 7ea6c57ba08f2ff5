"""What a scenario needs of the target's configuration, and the answers that follow from it.

A scenario that lists ``needs`` (``{"dest": "outbound-first-row"}``) runs
against any configuration that has them: :func:`resolve_needs` picks concrete
numbers from the configuration (``4930*`` -> ``493012345678``) and the values
that follow from them through the rules module (the caller ID the routing
table chooses, the name the directory knows). A configuration that lacks a
need yields :class:`NeedUnmet`, whose message is the skip reason.

Error answers are named by their case code (``invalid-direction``...), never
by their text: :func:`expected_error` is the one place that turns a code into
the status and body a Zammad version answers with (its profile,
:mod:`mock_server.zammad.profiles`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mock_server.zammad.caller_id import Directory, extract_numbers
from mock_server.zammad.config import MockConfig
from mock_server.zammad.endpoint import new_call_action
from mock_server.zammad.errors import CtiError
from mock_server.zammad.profiles import Profile, load_profile
from mock_server.zammad.routing import blocked_entry, outbound_route

PLACEHOLDER = re.compile(r"^\{need:([a-z][a-z0-9_]*)(?:\.([a-z_]+))?\}$")
ERROR_ID_PATTERN = r"^Error ID [A-Za-z0-9_-]{8}: Please contact your administrator\.$"
DIGITS = "12345678"  # appended where a routing pattern has a wildcard

ERROR_CODES = tuple(load_profile().answers)  # the cases a scenario's expect.error may name


def expected_error(code: str, profile: Profile | str | None = None) -> tuple[int, dict[str, str] | None, dict[str, str] | None]:
    """``(status, body, body_matches)`` of the error answer ``code`` in the Zammad version ``profile``.

    The one place error texts are resolved; ``profile`` is a profile or its
    name (None: the current Zammad). An Error ID answer has no fixed body,
    only a pattern.
    """
    zammad = profile if isinstance(profile, Profile) else load_profile(profile)
    spec = zammad.answers[code]
    if spec.get("error_id"):
        return spec["status"], None, {"error": ERROR_ID_PATTERN}
    return spec["status"], zammad.reply(CtiError(code, "")).body, None


class NeedUnmet(Exception):
    """The configuration lacks what a scenario needs; the message says what, as a skip reason."""


# --- the kinds of need ---------------------------------------------------------------------------

NEED_KINDS = {
    "outbound-first-row": "an outbound number the first routing row matches",
    "outbound-last-row": "an outbound number the last routing row matches (and no row before it)",
    "outbound-unrouted": "an outbound number no routing row matches",
    "blocked-caller": "a caller on the block list",
    "unblocked-caller": "an inbound caller neither blocked nor known to the directory",
    "known-contact": "a number the directory knows (a contact's phone)",
}


def number_for_dest(dest: str) -> str:
    """A number a routing row's ``dest`` matches: each ``*`` (one or more characters) becomes digits."""
    return dest.replace("*", DIGITS)


def _routed(cti: Mapping[str, Any], index_of: int) -> dict[str, Any]:
    rows = [row for row in ((cti.get("outbound") or {}).get("routing_table") or ()) if isinstance(row, dict)]
    if not rows:
        raise NeedUnmet("the configuration has no outbound routing row")
    row = rows[index_of]
    number = number_for_dest(str(row.get("dest", "")))
    route = outbound_route(cti, number)
    if route is None or route[1] is not row:
        which = "first" if index_of == 0 else "last"
        raise NeedUnmet(f"no number reaches the {which} routing row ({row.get('dest')!r}): an earlier row matches it")
    return {"number": number, "caller_id": route[0]}


def _unrouted(cti: Mapping[str, Any]) -> dict[str, Any]:
    rows = (cti.get("outbound") or {}).get("routing_table") or ()
    for number in ("0012345678", "99912345678", "12345", "8887776665"):
        if not any(isinstance(r, dict) and outbound_route({"outbound": {"routing_table": [r]}}, number) for r in rows):
            route = outbound_route(cti, number)
            return {"number": number, "caller_id": route[0] if route else None}
    raise NeedUnmet("every number tried matches a routing row (a catch-all '*' row?)")


def _blocked(cti: Mapping[str, Any]) -> dict[str, Any]:
    for row in (cti.get("inbound") or {}).get("block_caller_ids") or ():
        if isinstance(row, dict) and isinstance(row.get("caller_id"), str) and row["caller_id"]:
            return {"number": row["caller_id"]}
    raise NeedUnmet("the configuration blocks no caller (inbound.block_caller_ids is empty)")


def _unblocked(cti: Mapping[str, Any], directory: Directory) -> dict[str, Any]:
    for number in ("491799900001", "492219900002", "15559900003"):
        if blocked_entry(cti, number) is None and directory.comment_for(number) is None:
            return {"number": number}
    raise NeedUnmet("every caller tried is blocked or known")


def _known(cti: Mapping[str, Any], config: MockConfig, directory: Directory) -> dict[str, Any]:
    for contact in config.contacts:
        for key in ("phone", "mobile"):
            for number in extract_numbers(contact.get(key)):
                if blocked_entry(cti, number) is None and directory.comment_for(number):
                    return {"number": number, "name": directory.comment_for(number)}
    raise NeedUnmet("the configuration has no contact with a phone number the directory knows")


def resolve_needs(needs: Mapping[str, str], config: MockConfig) -> dict[str, dict[str, Any]]:
    """need name -> its values (``number`` and what follows: ``caller_id``, ``name``); raises :class:`NeedUnmet`."""
    cti = config.cti_config or {}
    directory = Directory(config.contacts)
    resolved: dict[str, dict[str, Any]] = {}
    for name, kind in needs.items():
        try:
            if kind == "outbound-first-row":
                resolved[name] = _routed(cti, 0)
            elif kind == "outbound-last-row":
                resolved[name] = _routed(cti, -1)
            elif kind == "outbound-unrouted":
                resolved[name] = _unrouted(cti)
            elif kind == "blocked-caller":
                resolved[name] = _blocked(cti)
            elif kind == "unblocked-caller":
                resolved[name] = _unblocked(cti, directory)
            elif kind == "known-contact":
                resolved[name] = _known(cti, config, directory)
            else:
                raise NeedUnmet(f"unknown need {kind!r}")
        except NeedUnmet as exc:
            raise NeedUnmet(f"needs {NEED_KINDS.get(kind, kind)} ({name}): {exc}") from None
    return resolved


def require_enabled(config: MockConfig) -> None:
    """A scenario that fits any configuration still needs the integration on and configured."""
    cti = config.cti_config or {}
    if not config.integration:
        raise NeedUnmet("needs the CTI integration switched on (integration is false)")
    if not cti.get("inbound") or not cti.get("outbound"):
        raise NeedUnmet("needs a cti_config with inbound and outbound parts")


def fill_needs(value: Any, resolved: Mapping[str, Mapping[str, Any]]) -> Any:
    """``value`` with every ``{need:NAME}`` / ``{need:NAME.FIELD}`` replaced by the resolved value."""
    if isinstance(value, str):
        match = PLACEHOLDER.match(value)
        if match is None:
            return value
        name, part = match.group(1), match.group(2) or "number"
        if name not in resolved or part not in resolved[name]:
            raise KeyError(f"{value}: no such need or value")
        return resolved[name][part]
    if isinstance(value, list):
        return [fill_needs(item, resolved) for item in value]
    if isinstance(value, dict):
        return {key: fill_needs(item, resolved) for key, item in value.items()}
    return value


def answer_by_rules(config: MockConfig, request: Mapping[str, Any]) -> dict[str, Any]:
    """The body Zammad answers a valid push with: reject, dial (through the rules module) or ``{}``."""
    action = new_call_action(config.cti_config or {}, request)
    return action.body if action is not None else {}
