"""``GET /api/v1/cti/log``: who may read the caller log, and what they see (``app/controllers/cti_controller.rb``).

Zammad wants an agent (``cti.agent``): without credentials it answers 403
``Authentication required``, an unknown API token 401 ``Can't find User for
Token`` (``application_controller/authenticates.rb``). An agent sees the
newest ``view_limit`` entries, only those of the queues ``notify_map`` maps
to them (plus their own phone numbers) when a ``notify_map`` is set
(``Cti::Log.log_records``, ``queues_of_user``), with the users caller
identification found as ``assets`` and the list of CTI ``backends``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .call_log import CallLog
from .caller_id import Directory, extract_numbers
from .config import MockConfig
from .errors import CtiError
from .ruby import blank

_TOKEN_AUTH = re.compile(r"^(?:Token|Bearer)\s+(?:token=)?\"?([^\",\s]+)\"?", re.IGNORECASE)


def reader_of(config: MockConfig, authorization: str | None, open_log: bool = False) -> Mapping[str, Any]:
    """The agent an ``Authorization: Token token=...`` header names; raises Zammad's 403 or 401."""
    if authorization:
        match = _TOKEN_AUTH.match(authorization.strip())
        agent = config.agent_for_api_token(match.group(1)) if match else None
        if agent is None:
            raise CtiError("unknown-api-token", "the Authorization header names no agent's API token of the configuration")
        return agent
    if open_log:
        return config.agents[0] if config.agents else {"id": 2, "login": "agent"}
    raise CtiError("authentication-required", "no Authorization header: Zammad's caller log needs an agent's "
                                              "API token (Authorization: Token token=...)")


def queues_of(agent: Mapping[str, Any], notify_map: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Zammad's ``queues_of_user``: the queues mapped to the agent's id, then the agent's own numbers."""
    queues = []
    for row in notify_map:
        user_ids = row.get("user_ids")
        if blank(user_ids):
            continue
        if str(agent["id"]) in user_ids or agent["id"] in user_ids:
            queues.append(row.get("queue"))
    queues += extract_numbers(agent.get("phone"))
    return queues


def visible_entries(config: MockConfig, entries: Iterable[dict[str, Any]], agent: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Newest first, at most ``view_limit``, filtered by ``notify_map`` when it is set."""
    notify_map = (config.cti_config or {}).get("notify_map")
    if not blank(notify_map):
        queues = set(map(str, queues_of(agent, notify_map)))
        entries = (entry for entry in entries if entry.get("queue") in queues)
    shown = []
    for entry in entries:
        if len(shown) >= config.view_limit:
            break
        shown.append(entry)
    return shown


def assets_of(entries: Iterable[dict[str, Any]], directory: Directory) -> dict[str, Any]:
    """The users named in the entries' ``preferences``, as Zammad's ``assets`` (``{"User": {id: ...}}``)."""
    users: dict[str, Any] = {}
    for entry in entries:
        for side in ("from", "to"):
            for record in (entry.get("preferences") or {}).get(side) or ():
                user_id = record.get("user_id")
                contact = directory.users.get(user_id)
                if contact is not None and str(user_id) not in users:
                    users[str(user_id)] = user_asset(user_id, contact)
    return {"User": users} if users else {}


def user_asset(user_id: int, contact: Mapping[str, Any]) -> dict[str, Any]:
    first, _, last = str(contact.get("name") or "").partition(" ")
    asset = {"id": user_id, "login": contact.get("email") or f"contact-{user_id}", "firstname": first, "lastname": last,
             "active": True}
    for key, value in contact.items():
        if key not in ("name", "articles", "id") and isinstance(value, str):
            asset[key] = value
    return asset


def backends(config: MockConfig) -> list[dict[str, Any]]:
    """The telephony integrations Zammad lists beside the log; only the generic CTI one is the mock's."""
    return [
        {"name": "CTI (generic)", "enabled": config.integration, "url": "#system/integration/cti"},
        {"name": "sipgate.io", "enabled": False, "url": "#system/integration/sipgate"},
        {"name": "Placetel", "enabled": False, "url": "#system/integration/placetel"},
    ]


def caller_log_answer(config: MockConfig, calls: CallLog, directory: Directory,
                      agent: Mapping[str, Any]) -> dict[str, Any]:
    # A notify_map can filter out most entries: then every kept one is read, else only the newest view_limit.
    filtered = not blank((config.cti_config or {}).get("notify_map"))
    shown = visible_entries(config, calls.newest(len(calls) if filtered else config.view_limit), agent)
    return {"list": shown, "assets": assets_of(shown, directory), "backends": backends(config)}
