"""The caller log and the call life cycle (Zammad's ``Cti::Log.process``).

Each ``callId`` is one caller-log entry: ``newCall`` creates it, ``answer``
and ``hangup`` update it. The rules for ``done``, the durations, the comments
and the queue are Zammad's; see docs in ``zammad-cti-reference.md``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .caller_id import Directory
from .errors import ALREADY_EXISTS, CtiError, error_id_message

EVENTS = ("newCall", "answer", "hangup")
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


def new_call_entry(entry_id: int, params: Mapping[str, Any], facts: CallFacts, now: datetime) -> CallLogEntry:
    """The caller-log entry a ``newCall`` creates: inbound calls start not done."""
    return CallLogEntry(
        id=entry_id,
        call_id=facts.call_id,
        direction=facts.direction,
        state="newCall",
        from_=params.get("from"),
        to=params.get("to"),
        from_comment=facts.from_comment,
        to_comment=facts.to_comment,
        queue=facts.queue,
        comment=facts.cause,
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
        entry.to_comment = facts.user
    entry.done = True
    entry.comment = facts.cause
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
    entry.comment = facts.cause
    entry.updated_at = now


class CallLog:
    """Zammad's ``cti_logs`` table for one mock: thread-safe, bounded, newest last.

    At most ``max_entries`` calls are kept (the oldest go first) so that a
    long load test does not grow memory without bound.
    """

    def __init__(self, clock: Clock = utc_now, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, CallLogEntry] = OrderedDict()
        self._next_id = 1
        self._lock = threading.Lock()

    def process(self, params: Mapping[str, Any], directory: Directory) -> CallLogEntry | None:
        """Record one event; raises the :class:`CtiError` a real Zammad would answer with."""
        facts = CallFacts.of(params, directory)
        event = params.get("event")
        key = _key(facts.call_id)
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key)
            if event == "newCall":
                if entry is not None:
                    raise CtiError(500, ALREADY_EXISTS, f"a call with callId {facts.call_id!r} already exists")
                return self._create(key, params, facts, now)
            if event in ("answer", "hangup"):
                if entry is None:
                    raise CtiError(
                        500, error_id_message(),
                        f"{event} for callId {facts.call_id!r}, which no newCall created (Zammad: No such call_id)",
                    )
                if event == "answer":
                    return entry if answer_call(entry, facts, now) else None
                hang_up_call(entry, facts, now)
                return entry
            raise CtiError(
                422, error_id_message(),
                f"event {event!r} is none of newCall, answer, hangup (Zammad: ArgumentError Unknown event)",
            )

    def _create(self, key: str, params: Mapping[str, Any], facts: CallFacts, now: datetime) -> CallLogEntry:
        entry = CallLogEntry(
            id=self._next_id,
            call_id=facts.call_id,
            direction=facts.direction,
            state="newCall",
            from_=params.get("from"),
            to=params.get("to"),
            from_comment=facts.from_comment,
            to_comment=facts.to_comment,
            queue=facts.queue,
            comment=facts.cause,
            done=facts.direction != "in",
            initialized_at=now,
            preferences=facts.preferences,
            created_at=now,
            updated_at=now,
        )
        self._next_id += 1
        self._entries[key] = entry
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return entry

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """Entries newest first, as Zammad orders the caller log."""
        with self._lock:
            entries = list(self._entries.values())
        return [entry.to_json() for entry in reversed(entries[-limit:] if limit > 0 else [])]

    def get(self, call_id: Any) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(_key(call_id))
            return entry.to_json() if entry else None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._next_id = 1

    def __len__(self) -> int:
        return len(self._entries)


def _key(call_id: Any) -> str:
    # Zammad's call_id column is a string: a JSON number 5 and "5" are one call.
    return "" if call_id is None else str(call_id)
