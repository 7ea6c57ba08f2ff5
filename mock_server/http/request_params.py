"""Turn a Flask request into the parameter map Zammad (Rails) would build.

Query-string variables, a JSON body, an ``application/x-www-form-urlencoded``
body (also a body sent without any ``Content-Type``: Rack's ``form_data?`` is
true when there is no media type) or a ``multipart/form-data`` body all end
up in one map; the folding rules themselves live in :mod:`mock_server.zammad.params`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from ..zammad.params import ParamsConflict, ParamsTooDeep, fold_pairs, merge_params


class MalformedBody(ValueError):
    """A body Rack could not parse (answered 400 before Zammad's code runs)."""


class UnreadableJson(MalformedBody):
    """A JSON body Rails could not parse: Zammad's error handler answers it (a 500 with an Error ID)."""


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
    if not mimetype:
        return "urlencoded" if request.content_length else "query"  # Rack reads it as a form
    return mimetype


def parse_request(request: Request) -> ParsedRequest:
    """Parameters as Zammad sees them; raises :class:`MalformedBody` where Rails answers 400."""
    encoding = encoding_of(request)
    raw = _body(request, encoding)
    try:
        query = fold_pairs(_urlencoded_pairs(request.environ.get("QUERY_STRING", "").encode("latin-1"), "query string"))
        repeated = list(query.repeated_keys)
        body: dict[str, Any] = {}
        if encoding == "json":
            body = _json_body(raw)
        elif encoding == "urlencoded":
            folded = fold_pairs(_urlencoded_pairs(raw, "urlencoded body"))
        elif encoding == "multipart":
            _check_multipart(request, raw)
            folded = fold_pairs(request.form.items(multi=True))
        if encoding in ("urlencoded", "multipart"):
            body = folded.values
            repeated += [k for k in folded.repeated_keys if k not in repeated]
    except (ParamsTooDeep, ParamsConflict) as exc:
        raise MalformedBody(str(exc)) from exc
    # Any other content type: Rails leaves the body alone, only the query counts.
    return ParsedRequest(encoding, merge_params(query.values, body), repeated)


def _body(request: Request, encoding: str) -> bytes:
    announced = request.environ.get("CONTENT_LENGTH") or ""
    if encoding in ("json", "urlencoded") and announced.isdigit():
        # What a PBX sends: read the announced bytes straight from the server's input stream.
        # Werkzeug's stream wrappers cost as much as parsing the body; multipart, chunked and
        # odd requests still go through them (the form parser reads from their cache).
        length = int(announced)
        if request.max_content_length is not None and length > request.max_content_length:
            raise RequestEntityTooLarge()
        raw = request.environ["wsgi.input"].read(length) if length else b""
    else:
        length = request.content_length or 0
        try:
            raw = request.get_data(cache=True)
        except BadRequest as exc:  # Werkzeug's ClientDisconnected: the client stopped sending
            raise MalformedBody(f"the body ended before the {length} bytes announced") from exc
    if len(raw) < length:
        raise MalformedBody(f"the body ended after {len(raw)} of the {length} bytes announced")
    return raw


_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _urlencoded_pairs(raw: bytes, what: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` as Rack reads it, refusing what Rack refuses: bad %-escapes, invalid UTF-8."""
    if not raw:
        return []
    if _BAD_PERCENT.search(raw):
        raise MalformedBody(f"the {what} has an invalid %-encoding")
    pairs = []
    try:
        for part in raw.split(b"&"):
            if part:
                key, _, value = part.partition(b"=")
                pairs.append((_unquote(key), _unquote(value)))
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the {what} is not valid UTF-8 once %-decoded") from exc
    return pairs


def _unquote(text: bytes) -> str:
    return unquote_to_bytes(text.replace(b"+", b" ")).decode("utf-8")


def _check_multipart(request: Request, raw: bytes) -> None:
    """What Werkzeug's lenient multipart parser lets pass but Rack refuses."""
    if not raw:
        return  # an empty body is no params, for Rack as for Werkzeug
    boundary = request.mimetype_params.get("boundary")
    if not boundary:
        raise MalformedBody("the multipart body has no boundary in its Content-Type")
    if f"--{boundary}--".encode("latin-1", "replace") not in raw:
        raise MalformedBody("the multipart body ends before its closing boundary")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the multipart body is not valid UTF-8 (byte {exc.start})") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _int_or_decimal(text: str) -> int | Decimal:
    try:
        return int(text)
    except ValueError:  # beyond Python's 4,300-digit limit for int(); Ruby reads any length
        return Decimal(text)


# Decimal keeps 1e999 a number instead of an infinity that JSON cannot carry back out;
# NaN and Infinity are refused, as Ruby's JSON parser refuses them.
_JSON = json.JSONDecoder(parse_float=Decimal, parse_int=_int_or_decimal, parse_constant=_refuse_constant)


def _json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the JSON body is not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from exc
    try:
        data = _JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise UnreadableJson(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValueError as exc:
        raise UnreadableJson(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise UnreadableJson("the JSON body is nested too deeply") from exc
    if isinstance(data, dict):
        return data
    # Rails wraps a JSON body that is not an object under "_json".
    return {"_json": data}
