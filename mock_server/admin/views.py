"""The mock's admin API under ``/__admin``: WireMock-style, one table of routes.

| route                         | what it does                                          |
|-------------------------------|-------------------------------------------------------|
| GET  /__admin/health          | liveness, counts                                      |
| POST /__admin/reset           | clears the caller log and the journal                 |
| GET  /__admin/config          | the running configuration, token masked               |
| PUT  /__admin/config          | replaces it (a body without ``token`` keeps the token) |
| GET  /__admin/requests        | the journal (``?call_id=``, ``?limit=``)              |
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from .. import __version__
from ..state import mock_state
from ..zammad.config import ConfigError, config_from_mapping

bp = Blueprint("admin", __name__, url_prefix="/__admin")


@bp.get("/health")
def health():
    state = mock_state(current_app)
    return jsonify({"status": "ok", "version": __version__, "calls": len(state.calls), "requests": len(state.journal)})


@bp.post("/reset")
def reset():
    mock_state(current_app).reset()
    return jsonify({"status": "reset"})


@bp.get("/config")
def get_config():
    return jsonify(mock_state(current_app).config.to_dict(mask_token=True))


@bp.put("/config")
def put_config():
    state = mock_state(current_app)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"error": "PUT /__admin/config takes a JSON object: {token?, integration, cti_config, contacts}"}), 400
    data = {"token": state.config.token, **data}
    try:
        config = config_from_mapping(data, source="PUT /__admin/config body")
    except ConfigError as exc:
        return jsonify({"error": str(exc)}), 400
    state.replace_config(config)
    return jsonify(config.to_dict(mask_token=True))


@bp.get("/requests")
def requests_journal():
    state = mock_state(current_app)
    limit = request.args.get("limit", type=int)
    return jsonify({"requests": state.journal.entries(call_id=request.args.get("call_id"), limit=limit)})
