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
from .errors import CtiError
from .pretty import pretty_number
from .ruby import blank, to_s, truthy

EVENTS = ("newCall", "answer", "hangup")
MAX_CALL_ID_LENGTH = 250  # Zammad's cti_logs.call_id: longer IDs are cut to this length
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


# Zammad's cti_logs string columns and their lengths (db/migrate/20120101000001_create_base.rb).
COLUMN_LIMITS = {"direction": 20, "state": 20, "from": 100, "from_comment": 250, "to": 100, "to_comment": 250,
                 "queue": 250, "call_id": 250, "comment": 500}
# The NOT NULL string columns, in table order: PostgreSQL names the first one a row leaves empty.
NOT_NULL_COLUMNS = ("direction", "state", "from", "to", "call_id")


def column(value: Any, name: str) -> str | None:
    """A value as Zammad saves it in the string column ``name``.

    Rails casts with Ruby's ``to_s``; then Zammad cuts a string longer than
    its column to the column's length and strips NUL characters, instead of
    refusing it (``app/models/application_model/checks_attribute_values_and_length.rb``).
    """
    text = to_s(value)
    if text is None or not text.strip():
        return text
    limit = COLUMN_LIMITS[name]
    if len(text) > limit:
        text = text[:limit]
    return text.replace("\x00", "")


def call_id_of(params: Mapping[str, Any]) -> Any:
    """Zammad: ``params['callId'] || params['call_id']``: Ruby's ``||``, so ``""`` counts as given."""
    call_id = params.get("callId")
    return call_id if truthy(call_id) else params.get("call_id")


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
        """The entry as ``GET /api/v1/cti/log`` lists it.

        ``from_pretty``/``to_pretty`` are what Zammad's ``set_pretty`` hook stores on every save,
        from the entry's ``from`` and ``to``: derived here, when the log is read, so that parsing
        numbers costs nothing on a push (the answer to the PBX never shows them).
        """
        from_pretty, to_pretty = pretty_number(self.from_), pretty_number(self.to)
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
            "preferences": {**self.preferences, "from_pretty": from_pretty, "to_pretty": to_pretty},
            "created_at": rails_time(self.created_at),
            "updated_at": rails_time(self.updated_at),
            "from_pretty": from_pretty,
            "to_pretty": to_pretty,
        }


@dataclass(frozen=True)
class CallFacts:
    """What Zammad derives from one event's parameters before it touches the log (``Cti::Log.process``)."""

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
            to_comment = user if not blank(user) else queue if not blank(queue) else None
            found = directory.identify(params.get("from"))
            from_comment, preferences = found.comment, found.preferences("from")
            queue = params.get("to") if blank(queue) else queue
        else:
            # Outbound: the agent is "from"; identify the person called.
            from_comment = user
            found = directory.identify(params.get("to"))
            to_comment, preferences = found.comment, found.preferences("to")
            queue = params.get("from") if blank(queue) else queue
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


def stored_call_id(call_id: Any) -> str | None:
    """The call ID as the caller log stores it: a string, cut at 250 characters."""
    return column(call_id, "call_id")


def new_call_entry(entry_id: int, params: Mapping[str, Any], facts: CallFacts, now: datetime) -> CallLogEntry:
    """The caller-log entry a ``newCall`` creates: inbound calls start not done.

    Raises the NOT NULL violation Zammad's database raises (a 422 naming the
    column) when ``from``, ``to`` or the call ID is missing.
    """
    entry = CallLogEntry(
        id=entry_id,
        call_id=column(facts.call_id, "call_id"),
        direction=column(facts.direction, "direction"),
        state="newCall",
        from_=column(params.get("from"), "from"),
        to=column(params.get("to"), "to"),
        from_comment=column(facts.from_comment, "from_comment"),
        to_comment=column(facts.to_comment, "to_comment"),
        queue=column(facts.queue, "queue"),
        comment=column(facts.cause, "comment"),
        done=facts.direction != "in",
        initialized_at=now,
        preferences=dict(facts.preferences),
        created_at=now,
        updated_at=now,
    )
    values = {"direction": entry.direction, "state": entry.state, "from": entry.from_, "to": entry.to,
              "call_id": entry.call_id}
    for name in NOT_NULL_COLUMNS:
        if values[name] is None:
            raise CtiError("missing-column", f"newCall without {name!r}: the caller log's {name} column is NOT NULL "
                                             "(PostgreSQL: null value in column violates not-null constraint)",
                           column=name)
    return entry


def answer_call(entry: CallLogEntry, facts: CallFacts, now: datetime) -> bool:
    """Apply ``answer``; False (and nothing changes) when the call is already hung up."""
    if entry.state == "hangup":
        return False
    entry.state = "answer"
    entry.start_at = now
    entry.duration_waiting_time = whole_seconds_between(entry.initialized_at or now, now)
    if facts.user is not None:
        entry.to_comment = column(facts.user, "to_comment")
    entry.done = True
    entry.comment = column(facts.cause, "comment")
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
    entry.comment = column(facts.cause, "comment")
    entry.updated_at = now


def answer_fails_after_saving(params: Mapping[str, Any]) -> bool:
    """Whether Zammad raises after an inbound ``answer`` was saved (``Cti::Driver::Base``).

    To open the caller's profile Zammad looks for the answering agent by
    ``answeringNumber``, else by ``User.find_by(login: @params[:user].downcase)``:
    a ``user`` that is present but no string (an array from ``user[]``, a
    number) has no ``downcase``, a NoMethodError, so a 500, after the log
    entry was already updated. The mock knows no agent by number.
    """
    if params.get("event") != "answer" or params.get("direction") != "in":
        return False
    user = params.get("user")
    return not blank(user) and not isinstance(user, str)
