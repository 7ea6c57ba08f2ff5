"""Failure messages a user can act on: scenario, request, curl, expected, actual.

Every contract failure, whichever suite found it, is raised as a
:class:`ContractFailure` built by :func:`contract_failure`, so they all read
alike and none of them shows the token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .requests_builder import DEFAULT_ACCEPT, curl_command
from .target import Target


class ContractFailure(AssertionError):
    """The target answered differently from a real Zammad."""


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def contract_failure(
    *,
    scenario: str,
    problem: str,
    target: Target,
    params: Mapping[str, Any],
    encoding: str,
    expected: Any,
    actual_status: int | None,
    actual_body: Any,
    token: str | None = None,
    accept: str | None = DEFAULT_ACCEPT,
) -> ContractFailure:
    """Build the failure; ``token`` is the token the request used, when not the target's own.

    ``accept`` is the Accept header sent (None: none); the curl command sends the same.
    """
    url = target.masked_url if token in (None, target.token) else target.endpoint_url_with(token)
    sent = "" if accept == DEFAULT_ACCEPT else (", no Accept header" if accept is None else f", Accept {accept!r}")
    lines = [
        f"{scenario}: {problem}",
        f"  request:  POST {url} ({encoding}{sent}) {_show(dict(params))}",
        f"  expected: {_show(expected)}",
        f"  actual:   {actual_status} {_show(actual_body)}",
        f"  reproduce: {curl_command(url, params, encoding, accept)}",
    ]
    return ContractFailure(target.mask("\n".join(lines)))


def response_body(response: Any) -> Any:
    """The parsed JSON body, else the start of the raw text (an HTML error page, say)."""
    try:
        return response.json()
    except ValueError:
        text = response.text
        return f"<not JSON, Content-Type {response.headers.get('Content-Type')!r}> {text[:300]!r}"
