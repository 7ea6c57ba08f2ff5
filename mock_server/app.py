"""The Flask app factory.

Configuration flows one way: defaults, then ``ZAMMAD_CTI_*`` environment
variables, then the ``test_config`` dict. Keys:

- ``CTI_CONFIG``: a path to a JSON/YAML configuration, a parsed mapping, or a
  :class:`MockConfig` (default: ``fixtures/documented-config.json``)
- ``TOKEN``: overrides the configuration's token
- ``JOURNAL``: a SQLite file to keep the caller log and the journal in across
  restarts (loaded at the start, written behind while the mock runs). Default
  ``None`` (``":memory:"`` too): nothing is kept, the mock starts empty
- ``FAULTS``: faults active from the start (see ``admin/faults.py``)
- ``STALE_CALL_SECONDS``: a call with no hangup after this long is a finding
- ``MAX_CALLS``: caller-log entries kept (oldest dropped first)
- ``JOURNAL_LIMIT``: journal entries kept
- ``MAX_CONTENT_LENGTH``: request body limit in bytes (413 above it)
- ``OPEN_CALLER_LOG``: answer ``GET /api/v1/cti/log`` without credentials, as
  the first configured agent (Zammad answers 403; ``serve --open-caller-log``)
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .admin.inspector import bp as inspector_bp
from .admin.journal import DEFAULT_JOURNAL_LIMIT, Journal
from .admin.views import bp as admin_bp
from .db import JournalFile, WriteBehind
from .http.cti import bp as cti_bp
from .http.negotiation import wants_json
from .http.push import PushReply, too_large_message
from .http.wsgi import PushMiddleware
from .state import EXTENSION_KEY, MockState, mock_state
from .zammad.call_log import CallLog
from .zammad.calls import DEFAULT_MAX_ENTRIES
from .zammad.config import (
    MockConfig,
    config_from_mapping,
    documented_config,
    load_config,
)
from .zammad.errors import CtiError, error_id_message

DEFAULTS: dict[str, Any] = {
    "CTI_CONFIG": None,
    "TOKEN": None,
    "JOURNAL": None,
    "FAULTS": (),
    "STALE_CALL_SECONDS": 600,
    "MAX_CALLS": DEFAULT_MAX_ENTRIES,
    "JOURNAL_LIMIT": DEFAULT_JOURNAL_LIMIT,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "OPEN_CALLER_LOG": False,
    "JSON_SORT_KEYS": False,
}


def resolve_config(source: Any, token: str | None = None) -> MockConfig:
    """A :class:`MockConfig` from a path, a mapping or a config; ``token`` overrides."""
    if source is None:
        config = documented_config()
    elif isinstance(source, MockConfig):
        config = source
    elif isinstance(source, Mapping):
        return config_from_mapping(dict(source), token=token)
    else:
        return load_config(Path(source), token=token)
    if token:
        config = dataclasses.replace(config, token=token)
    return config


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("ZAMMAD_CTI")
    if test_config:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False

    config = resolve_config(app.config["CTI_CONFIG"], app.config["TOKEN"])
    calls = CallLog(max_entries=int(app.config["MAX_CALLS"]))
    journal = Journal(limit=int(app.config["JOURNAL_LIMIT"]))
    persistence = None
    path = app.config["JOURNAL"]
    if path not in (None, "", ":memory:"):
        file = JournalFile(path)  # JournalFileError: one line for the user
        app.config["RESUMED"] = file.load_into(calls, journal)
        persistence = WriteBehind(file, calls, journal)
    state = MockState(config=config, calls=calls, journal=journal, faults=app.config["FAULTS"],
                      persistence=persistence)
    app.extensions[EXTENSION_KEY] = state
    # Write what is left behind when the app goes away or the process exits.
    weakref.finalize(app, state.close)
    app.register_blueprint(cti_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(inspector_bp)
    app.register_error_handler(HTTPException, _json_http_error)
    app.register_error_handler(Exception, _json_internal_error)
    app.wsgi_app = PushMiddleware(app.wsgi_app, state, app.config["MAX_CONTENT_LENGTH"], app.logger)
    return app


def _json_http_error(exc: HTTPException):
    """An unrouted request gets Zammad's routing catch-all answer (``errors#routing``), in its format."""
    if exc.code in (404, 405) and not request.path.startswith("/__admin"):
        # Zammad has no 405: any method or path it does not route falls through to a 404.
        reply = mock_state(current_app).config.profile.reply(CtiError("no-route", "not routed"))
        html = not wants_json(request.headers.get("Accept"), request.args.get("format"))
        data, content_type = PushReply(reply.status, reply.body, html=html).encoded()
        response = Response(data, status=reply.status, content_type=content_type)
        hint = f"Zammad routes only POST /api/v1/cti/:token and GET /api/v1/cti/log, not {request.method} {_masked(request.path)}"
        if "/integration/cti/" in request.path:
            hint += " (/api/v1/integration/cti is the old documentation's path)"
        response.headers["X-Zammad-Cti-Mock-Hint"] = hint  # the mock's own words; the body is Zammad's
        return response
    if exc.code == 404:
        body = {"error": f"No route matches [{request.method}] {_masked(request.path)}"}
    else:
        message = too_large_message(request.max_content_length) if exc.code == 413 else exc.description or exc.name
        body = {"error": message}
    response = jsonify(body)
    response.status_code = exc.code or 500
    if exc.code == 405:
        allowed = exc.get_response().headers.get("Allow")
        if allowed:
            response.headers["Allow"] = allowed
    return response


def _json_internal_error(exc: Exception):
    """A bug in the mock: answer as Zammad's error handler would, never with a stack trace."""
    current_app.logger.error("internal error on %s %s", request.method, _masked(request.path), exc_info=exc)
    return jsonify({"error": error_id_message()}), 500


def _masked(path: str) -> str:
    """The path with whatever stands where a token would, and the token itself, as ``***``."""
    path = _TOKEN_SEGMENT.sub(r"\1***", path)
    token = mock_state(current_app).config.token
    return path.replace(token, "***") if token else path


_TOKEN_SEGMENT = re.compile(r"(/cti/)(?!log(?:/|$))[^/]+")
