"""The inspector in a real browser: headless Chromium, driven by Playwright, following a call live.

Needs Debian's Chromium (``apt-get install -y chromium``: ``/usr/bin/chromium``)
and the ``playwright`` Python package (in the ``test`` extra). Playwright's own
browser download (``playwright install``) is never used. Without either the
test fails and says how to install it: CI must run it, not skip it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server import MockServer
from mock_server.state import mock_state

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# No --user-data-dir: Playwright starts every browser with a fresh, empty one of its own.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 5_000  # the page polls every second; a change shows within two polls

INBOUND = "e2e-in-1"
OUTBOUND = "e2e-out-1"
OFFICE = "4930600000000"
CUSTOMER = "493023125741"  # Christopher Miller in the documented configuration


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "The inspector's browser test needs the 'playwright' Python package: "
            ".venv/bin/pip install -e '.[test]' (or .venv/bin/pip install playwright). "
            "Do not run 'playwright install': the test drives Debian's Chromium.",
            pytrace=False,
        )
    if not CHROMIUM.is_file():
        pytest.fail(
            f"The inspector's browser test needs Chromium at {CHROMIUM}: "
            "apt-get update && apt-get install -y chromium "
            "(or set CHROMIUM_PATH to another Chromium binary).",
            pytrace=False,
        )
    return sync_playwright


@contextmanager
def _browser_page(sync_playwright: Any) -> Iterator[tuple[Any, list[str]]]:
    """A fresh 1280x800 page, and the JavaScript errors and CSP violations it reports."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
                    if message.type in ("error", "warning") else None)
            yield page, problems
        finally:
            browser.close()


def _push(mock: MockServer, **params: Any) -> dict[str, Any]:
    response = requests.post(mock.endpoint_url, json=params, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def _push_form(mock: MockServer, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    response = requests.post(mock.endpoint_url, data=pairs, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_inspector_follows_a_call_flow_live():
    sync_playwright = _playwright()  # fails, saying what to install, when the browser or Playwright is missing
    from playwright.sync_api import expect

    with _browser_page(sync_playwright) as (page, problems), MockServer() as mock:
        token = mock_state(mock.app).config.token
        page.goto(mock.url + "/__admin/")
        expect(page).to_have_title("Inspector · Zammad CTI mock")
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        expect(page.locator("#calls-empty")).to_be_visible()

        # Inbound newCall, form-encoded, with `user` repeated without [] (a finding).
        assert _push_form(mock, [("event", "newCall"), ("direction", "in"), ("from", CUSTOMER), ("to", OFFICE),
                                 ("callId", INBOUND), ("user", "Anna Schmidt"), ("user", "Ben Walter")]) == {}
        call = page.locator(f'#calls-body tr.call[data-call-id="{INBOUND}"]')
        expect(call.locator(".state")).to_have_text("ringing")
        expect(call).to_contain_text("Christopher Miller")  # caller identification
        expect(call).to_contain_text("Ben Walter")  # Zammad keeps the last value
        expect(call.locator(".findings-cell .pill.sev-warning")).to_contain_text("1")
        request_row = page.locator(f'#journal-body tr.request[data-call-id="{INBOUND}"]')
        expect(request_row).to_contain_text("urlencoded")
        expect(request_row.locator(".chip.sev-warning")).to_have_text("warning: repeated-plain-key")
        expect(page.locator("#sum-codes")).to_contain_text("repeated-plain-key")
        # The calls table shows the call ID; the summary says which window its counts cover.
        expect(call.locator("td.call-id")).to_have_text(INBOUND)
        expect(page.locator("#sum-window")).to_contain_text("the 1 call the caller log lists")
        expect(page.locator("#sum-window")).to_contain_text("the 2xx/4xx/5xx split covers the 1 newest request")

        # The call's detail lists the finding with its message.
        call.locator("button.toggle").click()
        expect(call.locator("button.toggle")).to_have_attribute("aria-expanded", "true")
        detail = page.locator(f'#calls-body tr.call[data-call-id="{INBOUND}"] + tr.detail')
        expect(detail.locator(".finding-code")).to_have_text("repeated-plain-key")
        expect(detail).to_contain_text("keeps only the last value")

        assert _push(mock, event="answer", direction="in", **{"from": CUSTOMER}, to=OFFICE, callId=INBOUND,
                     user="Ben Walter") == {}
        expect(call.locator(".state")).to_have_text("talking")
        assert _push(mock, event="hangup", direction="in", **{"from": CUSTOMER}, to=OFFICE, callId=INBOUND,
                     cause="normalClearing") == {}
        expect(call.locator(".state")).to_have_text("ended")
        expect(call).not_to_have_class("is-missed")
        expect(detail.locator(".events li")).to_have_count(3)  # newCall, answer, hangup: still open

        # Outbound to Munich: Zammad dials out with the Munich caller ID. The
        # agent's name is markup on purpose: the page must show it as text.
        answer = _push(mock, event="newCall", direction="out", **{"from": "4930600000201"}, to="498999998100",
                       callId=OUTBOUND, user='<img id="injected" src="x">Anna')
        assert answer == {"action": "dial", "caller_id": "498999998145", "number": "498999998100"}
        dial = page.locator(f'#journal-body tr.request[data-call-id="{OUTBOUND}"]')
        expect(dial.locator(".answer-summary")).to_have_text("dial 498999998100 as 498999998145")
        outbound = page.locator(f'#calls-body tr.call[data-call-id="{OUTBOUND}"]')
        expect(outbound.locator(".state")).to_have_text("ringing")
        expect(outbound).to_contain_text('<img id="injected" src="x">Anna')
        expect(page.locator("#injected")).to_have_count(0)

        # Paused, the page stands still; resumed, it catches up.
        page.get_by_role("button", name="Pause live updates").click()
        expect(page.locator("#live")).to_have_attribute("data-state", "paused")
        _push(mock, event="hangup", direction="out", **{"from": "4930600000201"}, to="498999998100",
              callId=OUTBOUND, cause="noAnswer")
        page.wait_for_timeout(1_500)
        expect(outbound.locator(".state")).to_have_text("ringing")
        page.get_by_role("button", name="Resume live updates").click()
        expect(outbound.locator(".state")).to_have_text("ended")
        expect(page.locator("#live")).to_have_attribute("data-state", "live")

        # The filter by call ID.
        page.get_by_role("searchbox", name="Call ID").fill(INBOUND)
        expect(page.locator("#calls-body tr.call")).to_have_count(1)
        expect(page.locator("#journal-body tr.request")).to_have_count(3)
        page.get_by_role("button", name="Clear the call ID filter").click()
        expect(page.locator("#calls-body tr.call")).to_have_count(2)

        assert token not in page.content()
        assert token not in page.locator("body").inner_text()

        # Reset clears the mock and the page.
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Reset: clear the caller log, the journal and the findings").click()
        expect(page.locator("#calls-body tr.call")).to_have_count(0)
        expect(page.locator("#journal-body tr.request")).to_have_count(0)
        assert requests.get(mock.url + "/__admin/health", timeout=5).json()["requests"] == 0

        # No script error, no CSP violation, no failed request all along.
        assert problems == []
