"""The call life cycle (Zammad's ``Cti::Log.process``), as pure functions on a caller-log entry.

Each ``callId`` is one caller-log entry: ``newCall`` creates it, ``answer``
and ``hangup`` update it. The rules for ``done``, the durations, the comments
and the queue are Zammad's. The store that loads and saves entries around
these functions is :mod:`.call_log`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .caller_id import Directory

EVENTS = ("newCall", "answer", "hangup")
MAX_CALL_ID_LENGTH = 250  # Zammad's cti_logs.call_id: a string of at most 250 characters, never null
DEFAULT_MAX_ENTRIES = 10_000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def rails_time(moment: datetime | None) -> str | None:
    """Rails' JSON time format: ISO 8601, milliseconds, ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def whole_seconds_between(start: datetime, end: datetime) -> int:
    """Zammad subtracts ``Time#to_i`` values: whole epoch seconds, each rounded down."""
    return int(end.timestamp()) - int(start.timestamp())


def column(value: Any) -> str | None:
    """A value as Zammad's string columns store it: Rails casts with Ruby's ``to_s``.

    A JSON number 4930 is stored as "4930", true as "t"; arrays and hashes as
    Ruby prints them. The caller log therefore only ever holds strings.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    return _ruby_inspect(value) if isinstance(value, (list, dict)) else str(value)


def _ruby_inspect(value: Any, depth: int = 0) -> str:
    if depth > 40:  # deeper than any PBX sends; the column gets a cut-off text, never a crash
        return "..."
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_ruby_inspect(k, depth + 1)}=>{_ruby_inspect(v, depth + 1)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_ruby_inspect(item, depth + 1) for item in value) + "]"
    if value is None:
        return "nil"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return column(value)


def call_id_of(params: Mapping[str, Any]) -> Any:
    """``callId``, else ``call_id`` (Zammad: ``params['callId'] || params['call_id']``)."""
    return params.get("callId") or params.get("call_id")


def user_of(params: Mapping[str, Any]) -> Any:
    """``user``; an array of names is joined with ``", "``."""
    user = params.get("user")
    if isinstance(user, list):
        return ", ".join(str(name) for name in user)
    return user


@dataclass(slots=True)
class CallLogEntry:
    id: int
    call_id: str
    direction: str
    state: str
    from_: Any
    to: Any
    from_comment: Any = None
    to_comment: Any = None
    queue: Any = None
    comment: Any = None
    done: bool = False
    initialized_at: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    duration_waiting_time: int | None = None
    duration_talking_time: int | None = None
    preferences: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as ``GET /api/v1/cti/log`` lists it."""
        return {
            "id": self.id,
            "call_id": self.call_id,
            "direction": self.direction,
            "state": self.state,
            "from": self.from_,
            "from_comment": self.from_comment,
            "to": self.to,
            "to_comment": self.to_comment,
            "queue": self.queue,
            "comment": self.comment,
            "done": self.done,
            "initialized_at": rails_time(self.initialized_at),
            "start_at": rails_time(self.start_at),
            "end_at": rails_time(self.end_at),
            "duration_waiting_time": self.duration_waiting_time,
            "duration_talking_time": self.duration_talking_time,
            "preferences": self.preferences,
            "created_at": rails_time(self.created_at),
            "updated_at": rails_time(self.updated_at),
        }


@dataclass(frozen=True)
class CallFacts:
    """What Zammad derives from one event's parameters before it touches the log."""

    call_id: Any
    direction: Any
    user: Any
    cause: Any
    queue: Any
    from_comment: Any
    to_comment: Any
    preferences: dict[str, Any]

    @classmethod
    def of(cls, params: Mapping[str, Any], directory: Directory) -> CallFacts:
        user = user_of(params)
        queue = params.get("queue")
        direction = params.get("direction")
        if direction == "in":
            # Inbound: the called agent (or queue) is "to"; identify the caller.
            to_comment = user or queue or None
            from_comment = directory.comment_for(params.get("from"))
            found = directory.preferences_for(params.get("from"))
            preferences = {"from": found} if found else {}
            queue = queue or params.get("to")
        else:
            # Outbound: the agent is "from"; identify the person called.
            from_comment = user
            to_comment = directory.comment_for(params.get("to"))
            found = directory.preferences_for(params.get("to"))
            preferences = {"to": found} if found else {}
            queue = queue or params.get("from")
        return cls(
            call_id=call_id_of(params),
            direction=direction,
            user=user,
            cause=params.get("cause"),
            queue=queue,
            from_comment=from_comment,
            to_comment=to_comment,
            preferences=preferences,
        )


def storable_call_id(call_id: Any) -> str | None:
    """Why Zammad's database refuses this call ID for a new call, or None when it takes it.

    The column is ``string(250), null: false``: a missing or over-long callId
    fails the insert, and Zammad's error handler answers 500 with an Error ID.
    (The reference documents the limit; the answer follows from its generic
    error handling.)
    """
    if call_id is None or call_id == "":
        return "no callId (or call_id): the caller log's call_id column may not be empty"
    if len(str(call_id)) > MAX_CALL_ID_LENGTH:
        return f"the callId has {len(str(call_id))} characters; the call_id column holds {MAX_CALL_ID_LENGTH}"
    return None


def new_call_entry(entry_id: int, params: Mapping[str, Any], facts: CallFacts, now: datetime) -> CallLogEntry:
    """The caller-log entry a ``newCall`` creates: inbound calls start not done."""
    return CallLogEntry(
        id=entry_id,
        call_id=column(facts.call_id),
        direction=facts.direction,
        state="newCall",
        from_=column(params.get("from")),
        to=column(params.get("to")),
        from_comment=column(facts.from_comment),
        to_comment=column(facts.to_comment),
        queue=column(facts.queue),
        comment=column(facts.cause),
        done=facts.direction != "in",
        initialized_at=now,
        preferences=facts.preferences,
        created_at=now,
        updated_at=now,
    )


def answer_call(entry: CallLogEntry, facts: CallFacts, now: datetime) -> bool:
    """Apply ``answer``; False (and nothing changes) when the call is already hung up."""
    if entry.state == "hangup":
        return False
    entry.state = "answer"
    entry.start_at = now
    entry.duration_waiting_time = whole_seconds_between(entry.initialized_at or now, now)
    if facts.user is not None:
        entry.to_comment = column(facts.user)
    entry.done = True
    entry.comment = column(facts.cause)
    entry.updated_at = now
    return True


def hang_up_call(entry: CallLogEntry, facts: CallFacts, now: datetime) -> None:
    """Apply ``hangup``: unanswered inbound calls and voicemail stay not done (missed calls)."""
    done = True
    if facts.direction == "in":
        if entry.state == "newCall" and facts.cause != "forwarded":
            done = False
        elif entry.to_comment == "voicemail":
            done = False
    entry.done = done
    entry.state = "hangup"
    entry.end_at = now
    if entry.start_at is not None:
        entry.duration_talking_time = whole_seconds_between(entry.start_at, now)
    elif entry.duration_waiting_time is None and entry.initialized_at is not None:
        entry.duration_waiting_time = whole_seconds_between(entry.initialized_at, now)
    entry.comment = column(facts.cause)
    entry.updated_at = now
