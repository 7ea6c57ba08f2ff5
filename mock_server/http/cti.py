"""Zammad's routes: ``POST /api/v1/cti/{token}`` and ``GET /api/v1/cti/log``."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request

from ..state import mock_state
from ..zammad.endpoint import Answer, push
from ..zammad.errors import CtiError
from .request_params import MalformedBody, parse_request

bp = Blueprint("cti", __name__)


@bp.post("/api/v1/cti/<token>")
def cti_push(token: str):
    state = mock_state(current_app)
    started = time.perf_counter()
    parsed = None
    try:
        parsed = parse_request(request)
        config = state.config
        answer = push(config, state.calls, state.directory, token, parsed.params)
    except MalformedBody as exc:
        answer = Answer(400, {"error": str(exc)}, str(exc))
    except CtiError as exc:
        answer = Answer(exc.status, exc.body, exc.detail)
    state.journal.record_push(
        request=request,
        token_valid=state.token_valid(token),
        parsed=parsed,
        answer=answer,
        duration_ms=(time.perf_counter() - started) * 1000,
    )
    return jsonify(answer.body), answer.status


@bp.get("/api/v1/cti/log")
def caller_log():
    """Zammad's caller log; a real Zammad wants an agent's session or API token here."""
    state = mock_state(current_app)
    return jsonify({"list": state.calls.newest(state.config.view_limit), "assets": {}})
