"""Any JSON value a PBX sends survives the report (text, JSON, JUnit) and ``/__admin/requests``.

Hypothesis builds CTI pushes whose fields are arbitrary JSON values (arrays,
objects, numbers, null, strings with lone surrogates and control characters);
each batch goes through a real mock's journal and all renderings.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server import create_app
from mock_server.admin.report import build_report, render
from mock_server.state import mock_state

TOKEN = "fuzz-token"
# Lone surrogates included: JSON may carry "\ud800", Python's json module reads it.
TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xDFFF), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False, width=32) | TEXT
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                      max_leaves=6)
FIELD = st.sampled_from(["event", "callId", "call_id", "from", "to", "direction", "user", "cause", "queue"])
PUSH = st.dictionaries(FIELD, VALUES | st.sampled_from(["newCall", "answer", "hangup", "in", "out", "c-1"]),
                       max_size=9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pushes=st.lists(PUSH, min_size=1, max_size=4))
def test_every_rendering_survives_any_json_a_pbx_sent(tmp_path_factory, pushes):
    path = tmp_path_factory.mktemp("fuzz") / "journal.sqlite3"
    app = create_app({"JOURNAL": str(path), "TOKEN": TOKEN})
    client = app.test_client()
    try:
        for params in pushes:
            body = json.dumps(params)  # escapes lone surrogates as \udxxx, as a PBX's JSON library would
            response = client.post(f"/api/v1/cti/{TOKEN}", data=body, content_type="application/json")
            assert response.status_code in (200, 400, 401, 404, 422, 500), response.data
        listed = client.get("/__admin/requests")
        assert listed.status_code == 200
        assert len(listed.get_json()["requests"]) == len(pushes)
        assert client.get("/__admin/findings").status_code == 200
    finally:
        mock_state(app).close()
    report = build_report(path, stale_after=0)
    assert report["summary"]["requests"] == len(pushes)
    for fmt in ("text", "json", "junit"):
        out = render(report, fmt)
        out.encode("utf-8")  # what the CLI writes: never a UnicodeEncodeError
        assert report["summary"]["verdict"] in out or fmt == "json"
    assert json.loads(render(report, "json"))["summary"]["requests"] == len(pushes)
    ET.fromstring(render(report, "junit"))
