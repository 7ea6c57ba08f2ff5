"""Rails' parameters: how Zammad turns a request's query string and body into one map.

:func:`rails_params` is the whole step, from bytes: the query string, then
the body by its media type, each folded as Rails folds it, merged with the
query string winning. Nothing here knows the HTTP server: the request
arrives as its query string, ``Content-Type`` and body.

- Bodies: JSON; ``application/x-www-form-urlencoded``, also a body sent
  without any ``Content-Type`` (Rack's ``form_data?`` is true when there is
  no media type); ``multipart/form-data`` (parsed with Werkzeug's multipart
  parser, checked for what Rack refuses and Werkzeug lets pass). Any other
  media type: Rails leaves the body alone.
- Folding: ``user[]=A&user[]=B`` -> ``{"user": ["A", "B"]}``, ``a[b]=c`` ->
  ``{"a": {"b": "c"}}``, a plain repeated key keeps its last value.
- Merging: ``request_parameters.merge(query_parameters)``: the query string
  wins; the path's ``token`` wins over both (the caller's business).
- Refusals: what Rack refuses before Zammad's code runs is a
  :class:`MalformedBody` (a 400); a JSON body Rails cannot parse is an
  :class:`UnreadableJson` (Zammad's error handler answers it, a 500).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_to_bytes

from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_RUBY_CLASS = {"str": "String", "list": "Array", "dict": "Hash"}
MAX_DEPTH = 32  # Rack refuses parameters nested deeper (ParamsTooDeepError, a 400)


class MalformedBody(ValueError):
    """A request Rack could not parse (answered 400 before Zammad's code runs)."""


class UnreadableJson(MalformedBody):
    """A JSON body Rails could not parse: Zammad's error handler answers it (a 500 with an Error ID)."""


class ParamsTooDeep(MalformedBody):
    """A key like ``a[b][c]...`` nested deeper than Rack accepts."""


class ParamsConflict(MalformedBody):
    """``user=a&user[]=b``: Rack's ParameterTypeError (expected Array, got String), a 400 before Zammad runs."""


@dataclass
class FoldedParams:
    """A folded parameter map, and the plain keys that were sent more than once."""

    values: dict[str, Any] = field(default_factory=dict)
    repeated_keys: list[str] = field(default_factory=list)


@dataclass
class ParsedParams:
    """Zammad's ``params`` for one request, how the body was encoded, and the plain keys sent twice."""

    encoding: str  # json, urlencoded, multipart, query, or the raw media type
    values: dict[str, Any]
    repeated_keys: list[str] = field(default_factory=list)
    unreadable_parts: int = 0  # multipart parts whose name could not be read: left out


def media_type_of(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``"Application/JSON; charset=utf-8"`` -> ``("application/json", {"charset": "utf-8"})``."""
    if not content_type:
        return "", {}
    mimetype, options = parse_options_header(content_type)
    return mimetype.lower(), options


def encoding_of(content_type: str | None, has_body: bool) -> str:
    """How Rails reads the body: ``json``, ``urlencoded``, ``multipart``, ``query`` (no body), else the media type."""
    mimetype, _ = media_type_of(content_type)
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return "json"
    if mimetype == "application/x-www-form-urlencoded":
        return "urlencoded"
    if mimetype == "multipart/form-data":
        return "multipart"
    if not mimetype:
        return "urlencoded" if has_body else "query"  # Rack reads a body without a media type as a form
    return mimetype


def rails_params(query_string: bytes, content_type: str | None, body: bytes) -> ParsedParams:
    """The parameters Zammad sees; raises :class:`MalformedBody` or :class:`UnreadableJson` where Rails does."""
    encoding = encoding_of(content_type, bool(body))
    query = fold_pairs(_urlencoded_pairs(query_string, "query string"))
    repeated = list(query.repeated_keys)
    values: dict[str, Any] = {}
    unreadable = 0
    if encoding == "json":
        values = _json_body(body)
    elif encoding in ("urlencoded", "multipart"):
        pairs: list[tuple[Any, Any]] = (_urlencoded_pairs(body, "urlencoded body") if encoding == "urlencoded"
                                        else _multipart_pairs(content_type, body))
        named = [(key, value) for key, value in pairs if key is not None]
        unreadable = len(pairs) - len(named)
        folded = fold_pairs(named)
        values = folded.values
        repeated += [key for key in folded.repeated_keys if key not in repeated]
    return ParsedParams(encoding, merge_params(query.values, values), repeated, unreadable)


# Folding and merging -------------------------------------------------------------------------


def _split_key(key: str) -> list[str]:
    """``user[]`` -> ["user", ""]; ``a[b][c]`` -> ["a", "b", "c"]; ``from`` -> ["from"]."""
    head, bracket, _ = key.partition("[")
    if not bracket or not head:
        return [key]
    rest = key[len(head):]
    parts = _BRACKETS.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        return [key]  # not well-formed Rails brackets: Rails keeps it verbatim too
    return [head, *parts]


def fold_pairs(pairs: Iterable[tuple[str, Any]]) -> FoldedParams:
    """Fold (key, value) pairs as Rails does."""
    folded = FoldedParams()
    seen_plain: set[str] = set()
    for key, value in pairs:
        path = _split_key(key) if "[" in key else None
        if path is None or len(path) == 1:  # a plain key
            if key in seen_plain and key not in folded.repeated_keys:
                folded.repeated_keys.append(key)
            seen_plain.add(key)
            folded.values[key] = value
            continue
        if len(path) > MAX_DEPTH:
            raise ParamsTooDeep(f"the parameter {key[:40]!r}... is nested {len(path)} levels deep; Rack accepts {MAX_DEPTH}")
        _assign(folded.values, path, value)
    return folded


def _assign(target: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = target
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        nxt = path[depth + 1] if not last else None
        if last:
            node[part] = value
            return
        if nxt == "":
            current = node.get(part)
            if current is not None and not isinstance(current, list):
                raise ParamsConflict(f"expected Array (got {_RUBY_CLASS[type(current).__name__]}) for param `{part}'")
            if current is None:
                current = node[part] = []
            if depth + 1 == len(path) - 1:
                current.append(value)
                return
            # ``a[][b]=1``: an array of hashes; Rack adds to the last hash until a key repeats.
            rest = path[depth + 2:]
            if not current or not isinstance(current[-1], dict) or rest[0] in current[-1]:
                current.append({})
            _assign(current[-1], rest, value)
            return
        child = node.get(part)
        if child is not None and not isinstance(child, dict):
            raise ParamsConflict(f"expected Hash (got {_RUBY_CLASS[type(child).__name__]}) for param `{part}'")
        if child is None:
            child = node[part] = {}
        node = child


def merge_params(query: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """Rails' ``params`` (``ActionDispatch::Http::Parameters#parameters``): the query string wins."""
    merged = dict(body)
    merged.update(query)
    return merged


# Bodies ---------------------------------------------------------------------------------------

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


def _multipart_pairs(content_type: str | None, raw: bytes) -> list[tuple[str | None, str]]:
    """The form fields of a multipart body (file parts reach Rails as uploads, not strings: left out).

    A part whose name Werkzeug cannot read (``name="a\\"``: an escaped closing quote) comes with the
    name None: :func:`rails_params` leaves it out and counts it.
    """
    if not raw:
        return []  # an empty body is no params, for Rack as for Werkzeug
    boundary = media_type_of(content_type)[1].get("boundary")
    # What Werkzeug's lenient parser lets pass but Rack refuses:
    if not boundary:
        raise MalformedBody("the multipart body has no boundary in its Content-Type")
    if f"--{boundary}--".encode("latin-1", "replace") not in raw:
        raise MalformedBody("the multipart body ends before its closing boundary")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the multipart body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        form, _files = MultiPartParser().parse(io.BytesIO(raw), boundary.encode("latin-1", "replace"), len(raw))
    except ValueError:
        # Past the checks above, what Werkzeug still cannot read (a part with no headers:
        # ``--B\r\n--B--``) is read as no fields, as the mock always read it (Werkzeug's forms are
        # silent) and as the contract suites read it: such a push then fails on its direction.
        return []
    return list(form.items(multi=True))


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
