"""``POST /api/v1/cti/{token}``: Zammad's order of checks, and the answer it gives.

1. integration off -> 422 disabled; 2. configuration blank -> 422 not
configured (both before the token); 3. wrong token -> 401; 4. direction not
in/out -> 422; 5. inbound newCall from a blocked number -> reject (logged);
6. outbound newCall with a routed or default caller ID -> dial (logged with
``from`` rewritten); 7. otherwise ``{}``. Life-cycle failures raise the
:class:`CtiError` Zammad's error handler turns into 500 or 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .call_log import CallLog
from .caller_id import Directory
from .config import MockConfig
from .errors import (
    FEATURE_DISABLED,
    INVALID_DIRECTION,
    INVALID_TOKEN,
    NOT_CONFIGURED,
    CtiError,
)
from .routing import REJECT_ANSWER, blocked_entry, dial_answer, outbound_route


@dataclass
class Answer:
    """What Zammad sends back, plus the reason, for the mock's journal only."""

    status: int
    body: dict[str, Any]
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = "recorded"  # recorded, reject, dial, ignored, or an error code


def _blank(value: Any) -> bool:
    """Ruby's ``blank?``: nil, false, empty or whitespace-only."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (dict, list, tuple)):
        return not value
    return False


def check_access(config: MockConfig, token: Any) -> None:
    """Checks 1 to 3, which Zammad makes before it reads any parameter."""
    if not config.integration:
        raise CtiError(422, FEATURE_DISABLED, "the CTI integration is switched off (integration: false)",
                       code="feature-disabled")
    cti = config.cti_config
    if _blank(cti) or _blank(cti.get("inbound")) or _blank(cti.get("outbound")):
        raise CtiError(422, NOT_CONFIGURED, "cti_config, or its inbound or outbound part, is blank",
                       code="not-configured")
    if not config.accepts_token(token):
        raise CtiError(401, INVALID_TOKEN, "the token in the URL differs from the configured cti_token",
                       code="invalid-token")


@dataclass(frozen=True)
class NewCallAction:
    """What Zammad tells the PBX for a newCall: reject a blocked caller, or dial out as a caller ID."""

    outcome: str  # "reject" or "dial"
    body: dict[str, Any]
    reason: str
    details: dict[str, Any]
    logged_from: Any  # the ``from`` Zammad logs the call with (the caller ID for a dial)


def new_call_action(cti_config: Mapping[str, Any], params: Mapping[str, Any]) -> NewCallAction | None:
    """Steps 5 and 6 of the order of checks; None when Zammad answers ``{}``.

    Also what the contract tests expect of any target, so the rule lives once.
    """
    if params.get("event") != "newCall":
        return None
    direction = params.get("direction")
    if direction == "in":
        blocked = blocked_entry(cti_config, params.get("from"))
        if blocked is not None:
            return NewCallAction("reject", dict(REJECT_ANSWER), "inbound caller is on the block list",
                                 {"block_entry": dict(blocked)}, params.get("from"))
    elif direction == "out":
        route = outbound_route(cti_config, params.get("to"))
        if route is not None:
            caller_id, row = route
            reason = f"routing table row {row.get('dest')!r}" if row else "default caller ID"
            return NewCallAction("dial", dial_answer(caller_id, params.get("to")), f"outbound caller ID from {reason}",
                                 {"routing_row": dict(row) if row else None}, caller_id)
    return None


def push(config: MockConfig, calls: CallLog, directory: Directory, token: Any, params: Mapping[str, Any]) -> Answer:
    """Handle one CTI push exactly as Zammad does; raise :class:`CtiError` for error answers."""
    check_access(config, token)
    direction = params.get("direction")
    if direction not in ("in", "out"):
        raise CtiError(422, INVALID_DIRECTION, f"direction is {direction!r}, expected 'in' or 'out'",
                       code="invalid-direction")

    action = new_call_action(config.cti_config or {}, params)
    if action is not None:
        # Zammad logs the call before it answers: a duplicate callId is a 500 even for a reject or dial.
        calls.process({**params, "from": action.logged_from}, directory)
        return Answer(200, action.body, action.reason, action.details, outcome=action.outcome)

    entry = calls.process(params, directory)
    if entry is None:
        return Answer(200, {}, "answer ignored: the call is already hung up", outcome="ignored")
    return Answer(200, {}, f"{params.get('event')} recorded")
