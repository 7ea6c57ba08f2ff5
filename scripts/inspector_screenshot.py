"""Take a screenshot of the live inspector with a realistic mix of calls.

    .venv/bin/python scripts/inspector_screenshot.py docs/inspector.png

Starts the mock on a free local port, plays a quarter of an hour of PBX
traffic into it (answered, missed, blocked and outbound calls, one still
ringing, one still talking, a few PBX mistakes), opens ``/__admin/`` in
headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) and
saves a 1280x800 screenshot.

The traffic is played in a moment but dated as if it had come over the last
fifteen minutes: the caller log gets a clock that the script moves, and the
journal's timestamps follow the same clock. That is a trick for the picture
only; tests never do it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from mock_server import MockServer
from mock_server.admin import journal as journal_module
from mock_server.state import mock_state
from mock_server.zammad.call_log import CallLog

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Playwright gives every launch a fresh, empty --user-data-dir of its own.


class ScriptClock:
    """``now`` is ``start + offset``; the script sets the offset before each event."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.offset = 0.0

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=self.offset)


@contextmanager
def journal_dated_by(clock: ScriptClock) -> Iterator[None]:
    """The journal module's ``datetime.now`` follows ``clock`` (for the picture only)."""

    class _Datetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # the clock is in UTC already
            return clock()

    original = getattr(journal_module, "datetime", None)
    if original is None:  # the journal dates entries some other way: real times then
        yield
        return
    journal_module.datetime = _Datetime
    try:
        yield
    finally:
        journal_module.datetime = original


# Fifteen minutes at a small office: (seconds after the start, encoding, parameters).
# Numbers and names follow fixtures/documented-config.json (routing table,
# block list, contacts).
OFFICE = "4930600000000"
WRONG_TOKEN = "__wrong_token__"  # a marker in TRAFFIC: send this one to a wrong URL
TRAFFIC: list[tuple[float, str, dict[str, Any]]] = [
    # Christopher Miller calls support; Anna answers after 8 s and talks 3 minutes.
    (0, "json", {"event": "newCall", "direction": "in", "from": "493023125741", "to": OFFICE,
                 "callId": "1714988400.101", "user": ["Anna Schmidt", "Ben Walter"], "queue": "support"}),
    (8, "json", {"event": "answer", "direction": "in", "from": "493023125741", "to": OFFICE,
                 "callId": "1714988400.101", "user": "Anna Schmidt", "answeringNumber": "201"}),
    (200, "json", {"event": "hangup", "direction": "in", "from": "493023125741", "to": OFFICE,
                   "callId": "1714988400.101", "cause": "normalClearing"}),
    # Anna calls Luca Rossi in Munich: dialled out with the Munich caller ID.
    (62, "urlencoded", {"event": "newCall", "direction": "out", "from": "4930600000201", "to": "498999998100",
                        "callId": "1714988462.102", "user": "Anna Schmidt"}),
    (75, "urlencoded", {"event": "answer", "direction": "out", "from": "4930600000201", "to": "498999998100",
                        "callId": "1714988462.102"}),
    (341, "urlencoded", {"event": "hangup", "direction": "out", "from": "4930600000201", "to": "498999998100",
                         "callId": "1714988462.102", "cause": "normalClearing"}),
    # A number on the block list: rejected busy, never answered.
    (150, "json", {"event": "newCall", "direction": "in", "from": "491715000000", "to": OFFICE,
                   "callId": "1714988550.103"}),
    (151, "json", {"event": "hangup", "direction": "in", "from": "491715000000", "to": OFFICE,
                   "callId": "1714988550.103", "cause": "busy"}),
    # Emma Taylor rings the sales queue; nobody picks up: a missed call.
    (300, "multipart", {"event": "newCall", "direction": "in", "from": "02214710334", "to": OFFICE,
                        "callId": "1714988700.104", "user[]": ["Anna Schmidt", "Ben Walter"], "queue": "sales"}),
    (325, "multipart", {"event": "hangup", "direction": "in", "from": "02214710334", "to": OFFICE,
                        "callId": "1714988700.104", "cause": "noAnswer"}),
    # A second PBX set up with a token copied wrong: Zammad answers 401.
    (455, "json", {"event": "newCall", "direction": "in", "from": "493023125741", "to": OFFICE,
                   "callId": "1714988855.0", WRONG_TOKEN: True}),
    # An anonymous caller; the PBX repeats `user` without [] (Zammad keeps the last name).
    (480, "urlencoded", {"event": "newCall", "direction": "in", "from": "anonymous", "to": OFFICE,
                         "callId": "1714988880.105", "user": ["Anna Schmidt", "Ben Walter"]}),
    (490, "urlencoded", {"event": "answer", "direction": "in", "from": "anonymous", "to": OFFICE,
                         "callId": "1714988880.105", "user": "Ben Walter"}),
    (600, "urlencoded", {"event": "hangup", "direction": "in", "from": "anonymous", "to": OFFICE,
                         "callId": "1714988880.105", "cause": "normalClearing"}),
    # Ben calls Emma's mobile: default caller ID; the PBX sends user on the outbound answer.
    (700, "json", {"event": "newCall", "direction": "out", "from": "4930600000202", "to": "01715551234",
                   "callId": "1714989100.106", "user": "Ben Walter"}),
    (712, "json", {"event": "answer", "direction": "out", "from": "4930600000202", "to": "01715551234",
                   "callId": "1714989100.106", "user": "Ben Walter"}),
    # A hangup for a call the PBX never announced.
    (760, "json", {"event": "hangup", "direction": "in", "from": "4940123456", "to": OFFICE,
                   "callId": "1714989160.099", "cause": "cancel"}),
    # Christopher again, ringing right now; the PBX adds a field Zammad does not know.
    (862, "query", {"event": "newCall", "direction": "in", "from": "493023125741", "to": OFFICE,
                    "callId": "1714989262.107", "user[]": ["Anna Schmidt"], "uniqueId": "1714989262.107"}),
]
END = 870  # the last moment of the traffic is "now"


def send(endpoint: str, encoding: str, params: dict[str, Any]) -> requests.Response:
    pairs = [(key, item) for key, value in params.items() for item in (value if isinstance(value, list) else [value])]
    if encoding == "json":
        return requests.post(endpoint, json=params, timeout=5)
    if encoding == "urlencoded":
        return requests.post(endpoint, data=pairs, timeout=5)
    if encoding == "multipart":
        return requests.post(endpoint, files=[(key, (None, str(value))) for key, value in pairs], timeout=5)
    return requests.post(endpoint, params=pairs, timeout=5)


def play(mock: MockServer, clock: ScriptClock) -> None:
    for offset, encoding, params in sorted(TRAFFIC, key=lambda item: item[0]):
        clock.offset = offset
        endpoint = mock.endpoint_url
        if params.get(WRONG_TOKEN):
            params = {key: value for key, value in params.items() if key != WRONG_TOKEN}
            endpoint = mock.url + "/api/v1/cti/copied-wrong"
        send(endpoint, encoding, params)
    clock.offset = END


def screenshot(url: str, path: Path, width: int, height: int, open_call: str | None) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, locale="en-GB",
                                    timezone_id="Europe/Berlin", color_scheme="light")
            page.goto(url)
            page.wait_for_selector("#live[data-state='live']")
            page.locator("#calls-body tr.call").nth(6).wait_for()
            if open_call:
                page.click(f"#calls-body tr[data-call-id='{open_call}'] button.toggle")
            page.mouse.move(0, 0)
            page.wait_for_timeout(300)
            page.screenshot(path=str(path))
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="the PNG to write, e.g. docs/inspector.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--open", dest="open_call", default="1714988880.105",
                        help="callId whose details are expanded ('' for none)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2

    clock = ScriptClock(datetime.now(timezone.utc) - timedelta(seconds=END))
    with journal_dated_by(clock), MockServer({"STALE_CALL_SECONDS": 3600}) as mock:
        state = mock_state(mock.app)
        state.calls = CallLog(state.db, clock=clock)
        play(mock, clock)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        screenshot(mock.url + "/__admin/", args.output, args.width, args.height, args.open_call or None)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
