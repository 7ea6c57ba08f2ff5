"""``POST /api/v1/cti/{token}``: Zammad's order of checks, and the answer it gives.

1. integration off -> 422 disabled; 2. configuration blank -> 422 not
configured (both before the token, and before the body is parsed); 3. wrong
token -> 401; 4. direction not in/out -> 422; 5. inbound newCall from a
blocked number -> reject (logged); 6. outbound newCall with a routed or
default caller ID -> dial (logged with ``from`` rewritten); 7. otherwise
``{}``. Every refusal is a :class:`CtiError` whose answer the version
profile words (``app/controllers/integration/cti_controller.rb``,
``app/models/cti/driver/base.rb``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .call_log import CallLog
from .caller_id import Directory
from .config import MockConfig
from .errors import CtiError
from .routing import REJECT_ANSWER, blocked_entry, dial_answer, outbound_route
from .ruby import blank


@dataclass
class Answer:
    """What Zammad sends back, plus the reason, for the mock's journal only."""

    status: int
    body: dict[str, Any]
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = "recorded"  # recorded, reject, dial, ignored, or an error code
    via_handler: bool = False  # Zammad's error handler answered: JSON only for a client that accepts it


def check_configured(config: MockConfig) -> None:
    """Checks 1 and 2, which Zammad makes before it reads any parameter."""
    if not config.integration:
        raise CtiError("feature-disabled", "the CTI integration is switched off (integration: false)")
    cti = config.cti_config
    if blank(cti) or blank(cti.get("inbound")) or blank(cti.get("outbound")):
        raise CtiError("not-configured", "cti_config, or its inbound or outbound part, is blank")


def check_access(config: MockConfig, token: Any) -> None:
    """Checks 1 to 3."""
    check_configured(config)
    if not config.accepts_token(token):
        raise CtiError("invalid-token", "the token in the URL differs from the configured cti_token")


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
    Raises :class:`CtiError` where Zammad's routing raises (see :func:`.routing.outbound_route`).
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


def push(config: MockConfig, calls: CallLog, directory: Directory, token: Any, params: Mapping[str, Any] | None,
         unreadable: CtiError | None = None) -> Answer:
    """Handle one CTI push exactly as Zammad does, in the configured version's words.

    ``unreadable`` is the failure to parse the body (malformed JSON): Zammad
    meets it when the token check first reads the parameters, so it comes
    after checks 1 and 2.
    """
    try:
        check_configured(config)
        if unreadable is not None:
            raise unreadable
        params = params or {}
        check_access(config, token)
        return _process(config, calls, directory, params)
    except CtiError as exc:
        reply = config.profile.reply(exc)
        return Answer(reply.status, reply.body, exc.detail, outcome=exc.code, via_handler=reply.via_handler)


def _process(config: MockConfig, calls: CallLog, directory: Directory, params: Mapping[str, Any]) -> Answer:
    direction = params.get("direction")
    if direction not in ("in", "out"):
        raise CtiError("invalid-direction", f"direction is {direction!r}, expected 'in' or 'out'")

    action = new_call_action(config.cti_config or {}, params)
    if action is not None:
        # Zammad logs the call before it answers: a duplicate callId fails even a reject or dial.
        calls.process({**params, "from": action.logged_from}, directory)
        return Answer(200, action.body, action.reason, action.details, outcome=action.outcome)

    agent_found = config.agent_by_number(params.get("answeringNumber")) is not None
    entry = calls.process(params, directory, agent_found=agent_found)
    if entry is None:
        return Answer(200, {}, "answer ignored: the call is already hung up", outcome="ignored")
    return Answer(200, {}, f"{params.get('event')} recorded")
