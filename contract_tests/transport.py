"""The one way the suites reach the target: at most ``--concurrency`` requests at once, and a note of each call made.

Every session a suite sends with comes from :func:`target_session`, whose
adapter holds one of the run's slots (:attr:`ContractContext.slots`, a
semaphore of ``--concurrency``) while a request is on the wire. However the
suites spread their work over threads, a target never sees more requests at
once than that: a staging Zammad is protected by construction, not by each
suite counting its own threads.

The same adapter notes, for the summary, how long the target took to answer
each push (per suite: :func:`contract_tests.context.current_suite`), the
newCalls it accepted (a 2xx answer: only those are in its caller log) and
the ones it never answered (no status: they may be).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from mock_server.zammad.calls import call_id_of, stored_call_id

from .context import CALL_ID_PREFIX, current_suite, note_answer_time, note_created_call, note_unanswered_call
from .wire import sent_params


class LimitedAdapter(HTTPAdapter):
    """An HTTP adapter that sends only while it holds one of ``slots``."""

    def __init__(self, slots: threading.Semaphore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._slots = slots

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            with self._slots:
                started = time.perf_counter()
                response = super().send(request, *args, **kwargs)
                seconds = time.perf_counter() - started  # until the answer's head: the target's time
                if not kwargs.get("stream"):
                    response.content  # noqa: B018 - the whole answer is read before the slot is free
        except requests.RequestException:
            _note_push(request, None, None)
            raise
        _note_push(request, response.status_code, seconds)
        return response


def target_session(slots: threading.Semaphore, session: requests.Session | None = None) -> requests.Session:
    """``session`` (default: a new one) sending through the run's slots."""
    session = session if session is not None else requests.Session()
    adapter = LimitedAdapter(slots)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class SessionPerThread:
    """One keep-alive session per thread, made by ``make`` (a requests.Session is not meant to be shared)."""

    def __init__(self, make: Callable[[], requests.Session]) -> None:
        self._make = make
        self._local = threading.local()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._make()
            with self._lock:
                self._all.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._all:
                session.close()
            self._all.clear()


def _note_push(request: requests.PreparedRequest, status: int | None, seconds: float | None) -> None:
    """The answer time of a push; for a newCall of this run, whether it was accepted (2xx) or not answered."""
    url = (request.url or "").split("?", 1)[0]
    if "/api/v1/cti/" not in url or url.endswith("/api/v1/cti/log"):
        return
    params = sent_params(request) or {}
    new_call = params.get("event") == "newCall"
    suite = current_suite()
    if seconds is not None and suite:
        note_answer_time(suite, seconds, new_call)
    if new_call and request.method == "POST":
        _note_call(params, status)


def _note_call(params: dict[str, Any], status: int | None) -> None:
    """A newCall of this run: accepted (2xx), or unanswered; a refused one created nothing."""
    call_id = call_id_of(params)
    if not isinstance(call_id, str) or not call_id.startswith(CALL_ID_PREFIX):
        return
    call_id = stored_call_id(call_id)  # as Zammad logs it: cut to its column
    if status is None:
        note_unanswered_call(call_id)
    elif 200 <= status < 300:
        note_created_call(call_id)
