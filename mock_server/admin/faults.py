"""Fault injection, WireMock-style: make the mock a slow, failing or unreachable Zammad on demand.

A fault is a JSON object:

``kind``          ``latency`` (answer normally, late), ``status`` (answer with a
                  forced status and a Zammad-shaped body, without processing the
                  event), ``drop`` (close the connection without an answer) or
                  ``hang`` (answer nothing until the client gives up)
``latency_ms``    for latency: a number, or ``[min, max]`` for a random delay
``status``/``body`` for status: e.g. 503 and ``{"error": "..."}`` (default:
                  Zammad's ``Error ID`` text)
``seconds``       for hang: how long to hold the request (default 60, at most 600)
``event``         only requests of this event (newCall, answer, hangup)
``probability``   only this fraction of the matching requests (0 to 1)
``times``         only the next N matching requests, then the fault is gone

The fault list lives in the mock's state (:mod:`..state`), in memory.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from typing import Any

import jsonschema

from ..zammad.calls import EVENTS
from ..zammad.endpoint import Answer
from ..zammad.errors import error_id_message

KINDS = ("latency", "status", "drop", "hang")
MAX_HANG_SECONDS = 600

FAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": list(KINDS)},
        "latency_ms": {
            "oneOf": [
                {"type": "number", "minimum": 0, "maximum": 600_000},
                {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 600_000},
                 "minItems": 2, "maxItems": 2},
            ]
        },
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "body": {},
        "seconds": {"type": "number", "minimum": 0, "maximum": MAX_HANG_SECONDS},
        "event": {"type": "string"},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "times": {"type": "integer", "minimum": 1},
    },
    "required": ["kind"],
    "additionalProperties": False,
    "allOf": [
        {"if": {"properties": {"kind": {"const": "latency"}}}, "then": {"required": ["latency_ms"]}},
        {"if": {"properties": {"kind": {"const": "status"}}}, "then": {"required": ["status"]}},
    ],
}

_validator = jsonschema.Draft202012Validator(FAULT_SCHEMA)


class FaultError(ValueError):
    """A fault definition the mock cannot apply; the message says why."""


def validate_fault(data: Any) -> dict[str, Any]:
    """A checked copy of ``data`` with an ``id``; raises :class:`FaultError`."""
    errors = list(_validator.iter_errors(data))
    if errors:
        first = min(errors, key=lambda e: len(e.path))
        where = "/".join(str(p) for p in first.absolute_path) or "fault"
        raise FaultError(f"{where}: {first.message}")
    fault = dict(data)
    fault.setdefault("id", uuid.uuid4().hex[:12])
    return fault


def parse_fault_option(text: str) -> dict[str, Any]:
    """``serve --fault`` syntax: ``KIND[:VALUE][,key=value...]``.

    ``latency:5000``, ``latency:100-500,probability=0.5``, ``status:503,times=3``,
    ``drop,event=hangup``, ``hang:30``.
    """
    try:
        return validate_fault(_parse_fault_spec(text))
    except (ValueError, TypeError) as exc:
        raise FaultError(f"--fault {text!r}: {exc}") from exc


def _parse_fault_spec(text: str) -> dict[str, Any]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise FaultError("empty fault: give a kind, one of " + ", ".join(KINDS))
    head, *options = parts
    kind, _, value = head.partition(":")
    if kind not in KINDS:
        raise FaultError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")
    fault: dict[str, Any] = {"kind": kind}
    if value:
        if kind == "latency":
            low, dash, high = value.partition("-")
            what = "milliseconds, e.g. latency:500 or latency:100-500"
            fault["latency_ms"] = ([_number(low, what), _number(high, what)] if dash else _number(low, what))
        elif kind == "status":
            fault["status"] = _number(value, "an HTTP status, e.g. status:503", int)
        elif kind == "hang":
            fault["seconds"] = _number(value, "seconds, e.g. hang:30")
        else:
            raise FaultError(f"{kind!r} takes no value (got {value!r})")
    for option in options:
        key, eq, raw = option.partition("=")
        if not eq:
            raise FaultError(f"expected key=value, got {option!r}")
        fault[key] = _option_value(key, raw)
    return fault


def _number(raw: str, what: str, kind: type = float) -> float | int:
    try:
        return kind(raw)
    except ValueError:
        raise FaultError(f"{raw!r} is not a number: give {what}") from None


def _option_value(key: str, raw: str) -> Any:
    if key == "times":
        return _number(raw, "a whole number of requests, e.g. times=3", int)
    if key in ("probability", "seconds"):
        return _number(raw, "a number, e.g. probability=0.5" if key == "probability" else "seconds, e.g. seconds=30")
    if key == "event" and raw not in EVENTS:
        near = next((name for name in EVENTS if name.lower() == raw.lower()), None)
        hint = f" (did you mean {near!r}? names are case-sensitive)" if near else ""
        raise FaultError(f"unknown event {raw!r}{hint}: choose one of {', '.join(EVENTS)}")
    return raw


def matches(fault: Mapping[str, Any], event: Any, rng: random.Random | None = None) -> bool:
    """Whether ``fault`` applies to a request of ``event`` (the probability draw included)."""
    if fault.get("event") not in (None, event):
        return False
    probability = fault.get("probability")
    if probability is not None and (rng or random).random() >= probability:
        return False
    return True


def latency_seconds(fault: Mapping[str, Any], rng: random.Random | None = None) -> float:
    value = fault.get("latency_ms", 0)
    if isinstance(value, list):
        low, high = sorted(value)
        value = (rng or random).uniform(low, high)
    return float(value) / 1000


def fault_answer(fault: Mapping[str, Any] | None) -> Answer | None:
    """The answer a fault puts in place of Zammad's; None when Zammad's rules still answer (latency, no fault)."""
    if fault is None or fault["kind"] == "latency":
        return None
    reason = f"fault {fault['id']} ({fault['kind']}) injected"
    if fault["kind"] == "status":
        body = fault.get("body") or {"error": error_id_message()}
        return Answer(fault["status"], body, reason, outcome="fault")
    return Answer(0, {}, reason + ": no answer sent", outcome="fault")


def fault_delay(fault: Mapping[str, Any] | None) -> tuple[float, bool]:
    """(seconds to wait before answering, whether then to close the connection without an answer)."""
    if fault is None:
        return 0.0, False
    kind = fault["kind"]
    if kind == "latency":
        return latency_seconds(fault), False
    if kind == "hang":
        return min(float(fault.get("seconds", 60)), MAX_HANG_SECONDS), True
    return 0.0, kind == "drop"
