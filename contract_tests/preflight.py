"""Before the suites: is the target there, is the token right, does it run the configuration assumed?

One probe push (an outbound newCall to a number the assumed configuration
routes, hung up again at once) answers all three. Each broken setup is one
line and an exit code, in seconds, instead of hundreds of identical failures:

- no answer (connection refused, DNS, TLS, timeout), or not a CTI endpoint
  (404, HTML): exit 4;
- 401: the token in the URL is wrong: exit 4;
- an answer the assumed configuration does not give: the target runs another
  configuration than ``--target-config``: exit 1.

Only ``requests`` and the rules module: no pytest here (the runner calls it).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import requests

from mock_server.zammad.config import MockConfig
from mock_server.zammad.profiles import profile_names

from .context import CALL_ID_PREFIX
from .needs import DIGITS, answer_by_rules, expected_error, number_for_dest
from .target import Target

PREFLIGHT_CONNECT_TIMEOUT = 5.0  # seconds: "nothing listens" must be told in seconds, not minutes


@dataclass
class Preflight:
    """What the probe found: ``problem`` is None when the suites can run, else one line and ``exit_code``."""

    problem: str | None = None
    exit_code: int = 0
    profile: str | None = None
    created_calls: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def probe_push(config: MockConfig, call_id: str) -> tuple[dict[str, str], int, Any]:
    """The probe newCall and the (status, body) the assumed configuration answers it with."""
    cti = config.cti_config or {}
    rows = [row for row in ((cti.get("outbound") or {}).get("routing_table") or ()) if isinstance(row, dict)]
    to = number_for_dest(str(rows[0].get("dest", ""))) if rows else f"4930{DIGITS}"
    params = {"event": "newCall", "from": "491799900001", "to": to, "direction": "out", "callId": call_id}
    if not config.integration:
        status, body, _ = expected_error("feature-disabled")
    elif not cti.get("inbound") or not cti.get("outbound"):
        status, body, _ = expected_error("not-configured")
    else:
        status, body = 200, answer_by_rules(config, params)
    return params, status, body


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _known_caller_ids(config: MockConfig) -> set[str]:
    outbound = (config.cti_config or {}).get("outbound") or {}
    rows = [row.get("caller_id") for row in outbound.get("routing_table") or () if isinstance(row, dict)]
    return {str(cid) for cid in [*rows, outbound.get("default_caller_id")] if cid}


def _another_configuration(params: dict[str, str], status: int, answer: Any, config: MockConfig) -> bool:
    """An answer that a correct Zammad gives under some other configuration (not a contract bug).

    A well-formed dial with another caller ID (another routing table or
    default: one the assumed configuration does not use), or the integration switched off or unconfigured. ``{}`` is left
    to the suites: more often a target that ignores the routing table than a
    configuration with neither a matching row nor a default.
    """
    if status == 200 and isinstance(answer, dict) and set(answer) == {"action", "caller_id", "number"}:
        # A caller ID of the assumed configuration, but the wrong one: that configuration misapplied (a bug).
        return (answer["action"] == "dial" and answer["number"] == params["to"]
                and isinstance(answer["caller_id"], str) and answer["caller_id"] not in _known_caller_ids(config))
    disabled = [expected_error(code, name)[:2] for code in ("feature-disabled", "not-configured")
                for name in profile_names()]
    return (status, answer) in disabled


def detect_profile(configured: str | None, answers: list[tuple[int, Any]]) -> str | None:
    """The version the preflight assumes: the runner's (``assumed_profile`` probed the target already).

    ``answers`` are the preflight's (status, body) pairs, kept for a finer probe.
    """
    return configured


def _unreachable(exc: requests.RequestException, timeout: float) -> str:
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed (certificate or protocol)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {PREFLIGHT_CONNECT_TIMEOUT:g}s"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"connected, but no answer within {timeout:g}s (--timeout)"
    if "Name or service not known" in text or "NameResolution" in text or "nodename nor servname" in text:
        return "the host name does not resolve (DNS)"
    if "Connection refused" in text or "ConnectionRefused" in text:
        return "connection refused (nothing listens there)"
    return f"{type(exc).__name__}"


def run_preflight(target: Target, config: MockConfig, config_name: str, timeout: float,
                  configured_profile: str | None = None) -> Preflight:
    result = Preflight()
    call_id = f"{CALL_ID_PREFIX}preflight-{secrets.token_hex(6)}"
    params, status, body = probe_push(config, call_id)
    where = target.masked_url
    with requests.Session() as http:
        try:
            response = http.post(target.endpoint_url, json=params, timeout=(PREFLIGHT_CONNECT_TIMEOUT, timeout))
        except requests.RequestException as exc:
            result.problem = f"the target does not answer: {_unreachable(exc, timeout)} at {where}"
            result.exit_code = 4
            return result
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 401 and status != 401:
            result.problem = (f"the token in the URL is wrong: the target answers 401 to every push ({where}); "
                              "copy the endpoint URL from Zammad's admin page (Integrations > CTI (generic))")
            result.exit_code = 4
            return result
        if answer is None or not isinstance(answer, dict):
            kind = response.headers.get("Content-Type", "no Content-Type")
            result.problem = (f"the target is not a Zammad CTI endpoint: {response.status_code} {kind} "
                              f"to a newCall at {where}")
            result.exit_code = 4
            return result
        if params["event"] == "newCall" and 200 <= response.status_code < 300:
            result.created_calls.append(call_id)
            # Leave no ringing call behind: hang the probe up again.
            hangup = {**params, "event": "hangup", "cause": "normalClearing"}
            try:
                http.post(target.endpoint_url, json=hangup, timeout=(PREFLIGHT_CONNECT_TIMEOUT, timeout))
            except requests.RequestException:
                pass
        result.profile = detect_profile(configured_profile, [(response.status_code, answer)])
        if (response.status_code, _canonical(answer)) == (status, _canonical(body)):
            return result
        if _another_configuration(params, response.status_code, answer, config):
            result.problem = (
                f"the target runs another configuration than --target-config {config_name}: an outbound newCall "
                f"to {params['to']} was answered {response.status_code} {_canonical(answer)}, "
                f"{config_name} gives {status} {_canonical(body)}; pass the target's own "
                "configuration with --target-config FILE"
            )
            result.exit_code = 1
        else:
            # Not explained by another configuration: a contract bug, which the suites show in full.
            result.notes.append(f"the probe newCall was answered {response.status_code} {_canonical(answer)}, "
                                f"expected {status} {_canonical(body)}; see the failures below")
    return result
