"""The mock without its journal or its caller log: experiments that show where a push's time goes.

Not a mock anyone should use (without the caller log every answer and hangup
"succeeds"): ``run.py --servers no-journal,no-caller-log,neither`` serves it
(``asgi_app``) under the same server and settings as the mock, and
``in_process.py --without ...`` replays the load through it in a loop.
The parts are switched off on the app's own state, never in the mock's code.
"""

import os

from mock_server.app import create_app
from mock_server.http.asgi import CtiAsgiApp
from mock_server.state import mock_state

PARTS = ("journal", "caller-log")


def without(app, parts):
    """Switch off parts of a mock app: its journal keeps nothing, its caller log remembers nothing."""
    state = mock_state(app)
    for part in parts:
        if part == "journal":
            state.journal.record = lambda record: None
        elif part == "caller-log":
            state.calls.process = lambda params, directory, **_: object()  # any entry: "recorded"
        else:
            raise ValueError(f"unknown part {part!r}; known: {', '.join(PARTS)}")
    return app


def _from_environment():
    parts = [part for part in os.environ.get("ZCTI_BENCH_WITHOUT", "").split(",") if part]
    config = {"JOURNAL": os.environ.get("ZCTI_BENCH_JOURNAL") or None}
    return without(create_app(config), parts)


if "ZCTI_BENCH_WITHOUT" in os.environ:  # under granian, started by run.py
    asgi_app = CtiAsgiApp(_from_environment())
