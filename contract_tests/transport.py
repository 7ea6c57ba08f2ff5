"""The one way the suites reach the target: at most ``--concurrency`` requests at once, and a note of each call made.

Every session a suite sends with comes from :func:`target_session`, whose
adapter holds one of the run's slots (:attr:`ContractContext.slots`, a
semaphore of ``--concurrency``) while a request is on the wire. However the
suites spread their work over threads, a target never sees more requests at
once than that: a staging Zammad is protected by construction, not by each
suite counting its own threads.

The same adapter notes, for the summary, the newCalls the target accepted
(a 2xx answer: only those are in its caller log) and the ones it never
answered (no status: they may be).
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from mock_server.zammad.calls import MAX_CALL_ID_LENGTH, call_id_of

from .context import CALL_ID_PREFIX, note_created_call, note_unanswered_call
from .wire import sent_params


class LimitedAdapter(HTTPAdapter):
    """An HTTP adapter that sends only while it holds one of ``slots``."""

    def __init__(self, slots: threading.Semaphore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._slots = slots

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            with self._slots:
                response = super().send(request, *args, **kwargs)
                if not kwargs.get("stream"):
                    response.content  # noqa: B018 - the whole answer is read before the slot is free
        except requests.RequestException:
            _note_call(request, None)
            raise
        _note_call(request, response.status_code)
        return response


def target_session(slots: threading.Semaphore, session: requests.Session | None = None) -> requests.Session:
    """``session`` (default: a new one) sending through the run's slots."""
    session = session if session is not None else requests.Session()
    adapter = LimitedAdapter(slots)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _note_call(request: requests.PreparedRequest, status: int | None) -> None:
    """A newCall of this run: accepted (2xx), or unanswered; a refused one created nothing."""
    if request.method != "POST" or "/api/v1/cti/" not in (request.url or ""):
        return
    params = sent_params(request)
    if not params or params.get("event") != "newCall":
        return
    call_id = call_id_of(params)
    if not isinstance(call_id, str) or not call_id.startswith(CALL_ID_PREFIX):
        return
    call_id = call_id[:MAX_CALL_ID_LENGTH]  # Zammad logs a longer callId cut to its column
    if status is None:
        note_unanswered_call(call_id)
    elif 200 <= status < 300:
        note_created_call(call_id)
