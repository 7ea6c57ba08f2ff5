"""The inspector page at /__admin/: served locally, locked down by CSP, never carrying the token.

The page itself is driven in a real browser by ``test_inspector_browser.py``;
these tests only look at what the mock serves.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from mock_server.admin.inspector import ASSETS

SECRET = "inspector-secret-5b1e9d"
PAGE = "/__admin/"


class _Refs(HTMLParser):
    """Every URL the page references, and what a strict CSP would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (tag, url)
        self.inline_scripts = 0
        self.inline_styles = 0
        self.handlers: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "formaction", "poster", "data"):
            if values.get(name):
                self.urls.append((tag, values[name]))
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if "style" in values:
            self.inline_styles += 1
        if tag == "style":
            self.inline_styles += 1
        self._in_script_without_src = tag == "script" and not values.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False


def _refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


@pytest.fixture
def app(make_app):
    return make_app(TOKEN=SECRET)


@pytest.fixture
def page(client):
    response = client.get(PAGE)
    assert response.status_code == 200
    return response


def test_page_is_html_with_a_strict_csp(page):
    assert page.mimetype == "text/html"
    assert page.mimetype_params.get("charset") == "utf-8"
    csp = page.headers["Content-Security-Policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";")}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_admin_without_slash_leads_to_the_page(client):
    response = client.get("/__admin")
    assert response.status_code in (301, 308)
    assert urlsplit(response.headers["Location"]).path == PAGE
    assert client.get("/__admin", follow_redirects=True).data == client.get(PAGE).data


def test_page_references_only_its_own_assets(page):
    refs = _refs(page.get_data(as_text=True))
    for tag, url in refs.urls:
        parts = urlsplit(url)
        assert parts.scheme in ("", "data"), f"<{tag}> points off the mock: {url}"
        assert not parts.netloc, f"<{tag}> points to another host: {url}"
    referenced = {urljoin(PAGE, url) for tag, url in refs.urls if tag in ("script", "link") and not url.startswith("data:")}
    assert referenced == {f"/__admin/inspector/{name}" for name in ASSETS}


def test_page_has_nothing_inline_that_the_csp_would_block(page):
    refs = _refs(page.get_data(as_text=True))
    assert refs.inline_scripts == 0
    assert refs.inline_styles == 0
    assert refs.handlers == []


@pytest.mark.parametrize(("name", "mimetype"), [("inspector.css", "text/css"), ("inspector.js", "text/javascript")])
def test_assets_are_served_with_their_content_type(client, name, mimetype):
    response = client.get(f"/__admin/inspector/{name}")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.mimetype_params.get("charset") == "utf-8"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.content_length and response.content_length > 1000


@pytest.mark.parametrize("name", ["inspector.html", "inspector.py", "..%2finspector.py", "views.py", "missing.js"])
def test_nothing_else_is_served_as_an_asset(client, name):
    response = client.get(f"/__admin/inspector/{name}")
    assert response.status_code == 404
    assert response.is_json


def test_no_asset_loads_anything_from_another_host(client):
    for path in [PAGE, *(f"/__admin/inspector/{name}" for name in ASSETS)]:
        text = client.get(path).get_data(as_text=True)
        assert not re.search(r"(?i)\bhttps?://", text), f"{path} names an absolute URL"
        assert not re.search(r"""['"(]\s*//[a-z0-9]""", text, re.IGNORECASE), f"{path} has a protocol-relative URL"
    stylesheet = client.get("/__admin/inspector/inspector.css").get_data(as_text=True)
    assert "@import" not in stylesheet
    assert not re.search(r"""url\(\s*['"]?(?!data:)""", stylesheet), "the stylesheet loads a resource"


def test_script_polls_the_admin_api_but_never_the_configuration(client):
    script = client.get("/__admin/inspector/inspector.js").get_data(as_text=True)
    for endpoint in ('"requests"', '"findings"', '"health"', '"reset"', '"calllog"'):
        assert endpoint in script
    assert not re.search(r"""["'/]config\b""", script)
    # What the PBX sent goes in as text only.
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script


def test_token_appears_neither_in_the_page_nor_in_what_it_polls(client, push, app):
    push(client, {"event": "newCall", "direction": "in", "from": "493023125741", "to": "4930600000000",
                  "callId": "insp-1", "user": ["A", "B"]}, encoding="urlencoded", token=SECRET)
    push(client, {"event": "newCall", "direction": "in", "from": "1", "to": "2", "callId": "insp-2"},
         token=SECRET + "-typo")
    paths = [PAGE, *(f"/__admin/inspector/{name}" for name in ASSETS),
             "/__admin/requests", "/__admin/requests?after=0&limit=500", "/__admin/findings",
             "/__admin/health", "/__admin/calllog"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        assert SECRET not in response.get_data(as_text=True), f"{path} carries the token"
    assert len(client.get("/__admin/requests").get_json()["requests"]) == 2
