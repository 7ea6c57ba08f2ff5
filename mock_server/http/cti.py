"""Zammad's caller log, ``GET /api/v1/cti/log``, as a Flask blueprint.

The push endpoint, ``POST /api/v1/cti/{token}``, is :mod:`.push`, served
before Flask by :mod:`.wsgi` and :mod:`.asgi`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from ..state import mock_state
from ..zammad.errors import CtiError
from ..zammad.log_reading import caller_log_answer, reader_of
from .negotiation import wants_json
from .push import PushReply

bp = Blueprint("cti", __name__)


@bp.get("/api/v1/cti/log")
def caller_log():
    """Zammad's caller log, for an agent who names their API token (``app/controllers/cti_controller.rb``)."""
    state = mock_state(current_app)
    config = state.config
    try:
        agent = reader_of(config, request.headers.get("Authorization"), current_app.config.get("OPEN_CALLER_LOG"))
    except CtiError as exc:
        reply = config.profile.reply(exc)
        as_html = not wants_json(request.headers.get("Accept"), request.args.get("format"))
        data, content_type = PushReply(reply.status, reply.body, html=as_html).encoded()
        response = Response(data, status=reply.status, content_type=content_type)
        response.headers["X-Failure"] = reply.body.get("error_human") or reply.body.get("error", "")
        return response
    return jsonify(caller_log_answer(config, state.calls, state.directory, agent))
