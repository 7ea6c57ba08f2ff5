"""What the target received: the parameters Zammad builds from a request as it went over the wire.

Shared by the schemathesis checks (which judge an answer by the parameters
Zammad saw) and the transport (which notes the newCalls a target accepted).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from mock_server.zammad.params import fold_pairs


def sent_params(request: requests.PreparedRequest) -> dict[str, Any] | None:
    """The parameters Zammad builds from the request sent: query, then the body on top (Rails params).

    Read from the wire rather than from ``case.body``: a form value that was
    an integer or a one-element list in the case is a plain string on the
    wire, and that is what Zammad's rules see. None when the body is one a
    Rails app cannot parse (the contract only fixes the shape of that answer).
    """
    raw = request.body or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    content_type = request.headers.get("Content-Type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        params = _fold(parse_qsl(urlsplit(request.url or "").query, keep_blank_values=True))
        if media_type == "application/json" or media_type.endswith("+json"):
            if raw.strip():
                data = json.loads(raw.decode("utf-8"))
                params.update(data if isinstance(data, dict) else {"_json": data})
        elif media_type == "application/x-www-form-urlencoded":
            params.update(_fold(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)))
        elif media_type == "multipart/form-data":
            params.update(_fold(_multipart_fields(content_type, raw)))
        # Any other content type: Rails leaves the body alone.
    except ValueError:  # not JSON, not UTF-8, nested deeper than Rack reads
        return None
    return params


def _multipart_fields(content_type: str, raw: bytes) -> Iterator[tuple[str, Any]]:
    # compat32: the structured-header policies are a hundred times slower and find nothing more here.
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + raw
    )
    if not message.is_multipart():
        raise ValueError("a multipart body without parts")  # no boundary, or none found: Rails cannot read it
    for part in message.get_payload():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            continue
        payload = part.get_payload(decode=True) or b""
        # A file part reaches Rails as an upload object, never as a plain string.
        value = object() if part.get_filename() is not None else payload.decode("utf-8")
        yield name, value


def _fold(pairs: Iterator[tuple[str, Any]] | list[tuple[str, Any]]) -> dict[str, Any]:
    """Rails folding, by the rules module: ``k[]`` collects a list, a repeated ``k`` keeps its last value."""
    return fold_pairs(pairs).values  # ParamsTooDeep is a ValueError
