"""Turn a Flask request into the parameter map Zammad (Rails) would build.

Query-string variables, a JSON body, an ``application/x-www-form-urlencoded``
body or a ``multipart/form-data`` body all end up in one map; the folding
rules themselves live in :mod:`mock_server.zammad.params`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import Request
from werkzeug.exceptions import BadRequest

from ..zammad.params import fold_pairs, merge_params


class MalformedBody(ValueError):
    """A body Rails could not parse (Zammad answers 400)."""


@dataclass
class ParsedRequest:
    encoding: str  # json, urlencoded, multipart, query, or the raw content type
    params: dict[str, Any]
    repeated_keys: list[str] = field(default_factory=list)


def encoding_of(request: Request) -> str:
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return "json"
    if mimetype == "application/x-www-form-urlencoded":
        return "urlencoded"
    if mimetype == "multipart/form-data":
        return "multipart"
    if not request.content_length and not mimetype:
        return "query"
    return mimetype or "unknown"


def parse_request(request: Request) -> ParsedRequest:
    """Parameters as Zammad sees them; raises :class:`MalformedBody` for unparseable bodies."""
    encoding = encoding_of(request)
    if request.content_length:
        received = len(request.get_data(cache=True))
        if received < request.content_length:
            raise MalformedBody(f"the body ended after {received} of the {request.content_length} bytes announced")
    query = fold_pairs(request.args.items(multi=True))
    repeated = list(query.repeated_keys)
    body: dict[str, Any] = {}
    if encoding == "json":
        body = _json_body(request)
    elif encoding in ("urlencoded", "multipart"):
        try:
            folded = fold_pairs(request.form.items(multi=True))
        except BadRequest as exc:
            raise MalformedBody(f"the {encoding} body cannot be parsed: {exc.description}") from exc
        body = folded.values
        repeated += [k for k in folded.repeated_keys if k not in repeated]
    # Any other content type: Rails leaves the body alone, only the query counts.
    return ParsedRequest(encoding, merge_params(query.values, body), repeated)


def _json_body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the JSON body is not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from exc
    try:
        # Decimal keeps 1e999 a number instead of an infinity that JSON cannot carry back out.
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise MalformedBody("the JSON body is nested too deeply") from exc
    if isinstance(data, dict):
        return data
    # Rails wraps a JSON body that is not an object under "_json".
    return {"_json": data}
