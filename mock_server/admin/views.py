"""The mock's admin API under ``/__admin``: WireMock-style, one table of routes.

| route                         | what it does                                          |
|-------------------------------|-------------------------------------------------------|
| GET  /__admin/health          | liveness, counts                                      |
| POST /__admin/reset           | clears the caller log and the journal                 |
| GET  /__admin/config          | the running configuration, token masked               |
| PUT  /__admin/config          | replaces it (a body without ``token`` keeps the token) |
| GET  /__admin/calllog         | the whole caller log, newest first, without Zammad's agent check or notify_map filter |
| GET  /__admin/requests        | the journal (``?call_id=``, ``?limit=``, ``?since=``, ``?after=<id>``) |
| GET  /__admin/findings        | what the PBX did wrong (``?call_id=``, ``?since=``)   |
| GET  /__admin/faults          | the active faults                                     |
| POST /__admin/faults          | adds a fault (see :mod:`.faults` for its fields)      |
| DELETE /__admin/faults[/<id>] | removes one fault, or all                             |
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from flask import Blueprint, current_app, jsonify, request

from .. import __version__
from ..state import mock_state
from ..zammad.config import ConfigError, config_from_mapping
from .faults import FaultError, validate_fault
from .findings import sequence_findings, summarize, unfinished_call_findings, with_sequence_findings

bp = Blueprint("admin", __name__, url_prefix="/__admin")


@bp.get("/health")
def health():
    state = mock_state(current_app)
    return jsonify({"status": "ok", "version": __version__, "calls": len(state.calls), "requests": len(state.journal)})


@bp.post("/reset")
def reset():
    mock_state(current_app).reset()
    return jsonify({"status": "reset"})


@bp.get("/calllog")
def caller_log_unfiltered():
    """The inspector's view: every kept entry (Zammad's own route wants an agent and filters by queue)."""
    state = mock_state(current_app)
    limit = request.args.get("limit", type=int) or state.config.view_limit
    return jsonify({"list": state.calls.newest(limit), "view_limit": state.config.view_limit})


@bp.get("/config")
def get_config():
    return jsonify(mock_state(current_app).config.to_dict(mask_token=True))


@bp.put("/config")
def put_config():
    state = mock_state(current_app)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify({"error": "PUT /__admin/config takes a JSON object: {token?, integration, cti_config, contacts}"}), 400
    keep_token = "token" not in data
    try:
        config = config_from_mapping({"token": "kept", **data}, source="PUT /__admin/config body")
    except ConfigError as exc:
        return jsonify({"error": str(exc)}), 400
    if keep_token:
        config = dataclasses.replace(config, token=state.config.token, token_sha256=state.config.token_sha256)
    state.replace_config(config)
    return jsonify(config.to_dict(mask_token=True))


@bp.get("/requests")
def requests_journal():
    state = mock_state(current_app)
    entries = state.journal.entries(
        call_id=request.args.get("call_id"),
        limit=request.args.get("limit", type=int),
        since=request.args.get("since"),
        after=request.args.get("after", type=int),
    )
    # Findings that need the call's earlier requests, judged within the entries listed.
    return jsonify({"requests": with_sequence_findings(entries)})


@bp.get("/findings")
def list_findings():
    """Stored findings plus calls that never ended (computed now, so they appear once overdue)."""
    state = mock_state(current_app)
    call_id, since = request.args.get("call_id"), request.args.get("since")
    stale_after = float(current_app.config["STALE_CALL_SECONDS"])
    overdue = state.calls.unfinished(datetime.now(timezone.utc) - timedelta(seconds=stale_after))
    findings = state.journal.findings(call_id=call_id, since=since)
    # Second hangups and reused callIds show only in the order of a call's requests: judged now.
    entries = {e["id"]: e for e in state.journal.entries(call_id=call_id)}
    added, superseded = sequence_findings(list(entries.values()))
    findings = [f for f in findings if not (f["request_id"] in superseded and f["code"] == "duplicate-newcall")]
    findings += [{"id": None, "request_id": rid, "time": entries[rid]["time"], "call_id": entries[rid]["call_id"],
                  **f.to_json()}
                 for rid, found in added.items() for f in found if since is None or entries[rid]["time"] >= since]
    findings.sort(key=lambda f: (f["request_id"] is None, f["request_id"] or 0))
    findings += [f for f in unfinished_call_findings(overdue, stale_after)
                 if call_id in (None, f["call_id"]) and (since is None or f["time"] >= since)]
    return jsonify({"findings": findings, "summary": summarize(findings)})


@bp.get("/faults")
def list_faults():
    return jsonify({"faults": mock_state(current_app).faults})


@bp.post("/faults")
def add_fault():
    try:
        fault = validate_fault(request.get_json(silent=True))
    except FaultError as exc:
        return jsonify({"error": f"not a fault: {exc}"}), 400
    mock_state(current_app).add_fault(fault)
    return jsonify(fault), 201


@bp.delete("/faults")
def clear_faults():
    return jsonify({"removed": mock_state(current_app).remove_faults()})


@bp.delete("/faults/<fault_id>")
def remove_fault(fault_id: str):
    removed = mock_state(current_app).remove_faults(fault_id)
    if not removed:
        return jsonify({"error": f"no fault with id {fault_id!r}"}), 404
    return jsonify({"removed": removed})
