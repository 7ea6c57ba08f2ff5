"""One CTI push in any of Zammad's encodings, and the curl command that reproduces it.

Encodings: ``json`` (a JSON body), ``urlencoded`` and ``multipart`` (form
bodies, arrays as Rails ``user[]`` keys), ``query`` (query-string variables,
no body). Every failure this package reports carries :func:`curl_command`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

ENCODINGS = ("json", "urlencoded", "multipart", "query")
DEFAULT_ACCEPT = "*/*"  # what curl and Python's requests send; Zammad treats it as JSON


def form_pairs(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten params the Rails way: ``{"user": ["A", "B"]}`` -> ``user[]=A, user[]=B``."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            name = key if key.endswith("[]") else f"{key}[]"
            pairs.extend((name, _text(item)) for item in value)
        else:
            pairs.append((key, _text(value)))
    return pairs


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def request_kwargs(params: Mapping[str, Any], encoding: str) -> dict[str, Any]:
    """Keyword arguments for ``requests.post`` that send ``params`` in ``encoding``."""
    if encoding == "json":
        return {"json": dict(params)}
    if encoding == "urlencoded":
        return {"data": form_pairs(params), "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    if encoding == "multipart":
        # (None, value) tuples make requests send plain form fields, not files.
        return {"files": [(key, (None, value)) for key, value in form_pairs(params)]}
    if encoding == "query":
        return {"params": form_pairs(params)}
    raise ValueError(f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")


def curl_command(url: str, params: Mapping[str, Any], encoding: str, accept: str | None = DEFAULT_ACCEPT) -> str:
    """A curl command that sends the same request (pass a masked URL for anything printed).

    ``accept``: the Accept header (curl sends ``*/*`` by itself; None sends none, ``Accept:`` removes it).
    """
    parts = ["curl", "--silent", "--show-error", "--request", "POST"]
    if accept != DEFAULT_ACCEPT:
        parts += ["--header", "Accept:" if accept is None else f"Accept: {accept}"]
    if encoding == "json":
        parts += ["--header", "Content-Type: application/json", "--data-raw", json.dumps(dict(params))]
    elif encoding == "urlencoded":
        for key, value in form_pairs(params):
            parts += ["--data-urlencode", f"{key}={value}"]
    elif encoding == "multipart":
        for key, value in form_pairs(params):
            parts += ["--form-string", f"{key}={value}"]
    elif encoding == "query":
        url = f"{url}?{urlencode(form_pairs(params))}"
    else:
        raise ValueError(f"unknown encoding {encoding!r}")
    return " ".join(shlex.quote(part) for part in [*parts[:5], url, *parts[5:]])
