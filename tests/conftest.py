"""Fixtures for the mock's own tests: a fresh app per test, a client, a push helper, a clock.

``make_app(**overrides)`` builds an app from ``create_app`` keys
(``CTI_CONFIG``, ``TOKEN``, ``MAX_CALLS``, ...); ``documented`` is a fresh,
mutable copy of ``fixtures/documented-config.json`` to derive configs from.
``push(client, params, encoding="json", token=None)`` sends one CTI push; a
list value is sent as repeated keys in form and query encodings, so
``{"user[]": ["A", "B"]}`` is the Rails array and ``{"user": ["A", "B"]}``
the plain repeated key.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from mock_server import create_app
from mock_server.state import mock_state
from mock_server.zammad.call_log import CallLog

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED_CONFIG_PATH = ROOT / "fixtures" / "documented-config.json"
_DOCUMENTED = json.loads(DOCUMENTED_CONFIG_PATH.read_text(encoding="utf-8"))
DOCUMENTED_TOKEN = "documented-token-3f9c2a"


class FakeClock:
    """A clock the test moves by hand: ``clock.advance(3)`` is three seconds later."""

    def __init__(self, start: datetime = datetime(2024, 5, 6, 10, 0, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _pairs(params: Mapping[str, Any]) -> MultiDict:
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, item))
    return MultiDict(pairs)


def push_params(client: FlaskClient, params: Mapping[str, Any], encoding: str = "json", token: str | None = None,
                accept: str | None = "*/*"):
    """POST ``params`` to the CTI endpoint as ``json``, ``urlencoded``, ``multipart`` or ``query``.

    ``Accept: */*`` by default, as curl and Python's requests send it (Zammad's error handler then
    answers JSON); ``accept=None`` sends no Accept header, as Go's net/http does (HTML error pages).
    """
    if token is None:
        token = mock_state(client.application).config.token
    url = f"/api/v1/cti/{token}"
    headers = {"Accept": accept} if accept is not None else {}
    if encoding == "json":
        return client.post(url, json=dict(params), headers=headers)
    if encoding == "urlencoded":
        return client.post(url, data=_pairs(params), content_type="application/x-www-form-urlencoded", headers=headers)
    if encoding == "multipart":
        return client.post(url, data=_pairs(params), content_type="multipart/form-data", headers=headers)
    if encoding == "query":
        return client.post(url, query_string=_pairs(params), headers=headers)
    raise ValueError(f"unknown encoding {encoding!r}")


@pytest.fixture
def documented() -> dict[str, Any]:
    """A fresh copy of the documented configuration, safe to modify."""
    return copy.deepcopy(_DOCUMENTED)


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        apps.append(create_app(overrides))
        return apps[-1]

    yield factory
    for built in apps:
        mock_state(built).close()  # removes the app's temporary database


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token() -> str:
    return DOCUMENTED_TOKEN


@pytest.fixture
def push() -> Callable[..., Any]:
    return push_params


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def use_clock(clock: FakeClock) -> Callable[[Flask], FakeClock]:
    """``use_clock(app)`` gives the app an empty caller log that reads ``clock``."""
    def install(app: Flask) -> FakeClock:
        state = mock_state(app)
        state.calls = CallLog(clock=clock)
        return clock
    return install
