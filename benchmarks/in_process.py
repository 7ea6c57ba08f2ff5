"""CPU time per push in process: the wrk mix replayed through the mock's WSGI app in a loop.

    .venv/bin/python benchmarks/in_process.py                         # CPU us per push, 3 runs
    .venv/bin/python benchmarks/in_process.py --without journal       # parts off, as in variants.py
    .venv/bin/python benchmarks/in_process.py --profile               # and where it goes (cProfile)

No server, no sockets: what the mock's own Python costs, journal thread
included (the CPU time of the whole process, measured after the journal is
flushed). The mix is ``cti_mix.lua``'s: outbound newCalls in JSON, inbound
newCalls as forms with ``user[]``, answers and hangups of earlier calls.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

from werkzeug.test import EnvironBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from variants import PARTS, without  # noqa: E402

from mock_server.app import create_app  # noqa: E402
from mock_server.state import mock_state  # noqa: E402

TOKEN = "documented-token-3f9c2a"
JSON, FORM = "application/json", "application/x-www-form-urlencoded"


def pushes(count: int, run: int) -> list[dict]:
    """WSGI environs for ``count`` pushes, built before the clock starts."""
    environs = []
    for step in range(count):
        phase, call = step % 4, f"zcti-inproc-{run}-{step - step % 4}"
        if phase == 0:
            body, kind = (f'{{"event":"newCall","from":"493023125741","to":"4989{step:08d}","direction":"out",'
                          f'"callId":"{call}","user":"Christopher Miller"}}'), JSON
        elif phase == 1:
            body, kind = (f"event=newCall&from=4922{step:08d}&to=493023125741&direction=in&callId={call}-in"
                          "&user%5B%5D=Christopher+Miller&user%5B%5D=Emma+Taylor"), FORM
        else:
            event, extra = ("answer", "") if phase == 2 else ("hangup", ',"cause":"normalClearing"')
            body, kind = (f'{{"event":"{event}","from":"498999998145","to":"4989{step - phase:08d}",'
                          f'"direction":"out","callId":"{call}"{extra}}}'), JSON
        environs.append(EnvironBuilder(path=f"/api/v1/cti/{TOKEN}", method="POST", data=body,
                                       content_type=kind).get_environ())
    return environs


def one_run(count: int, run: int, parts: list[str], profile: cProfile.Profile | None) -> float:
    with tempfile.TemporaryDirectory(prefix="zammad-cti-inproc-"):
        app = without(create_app({}), parts)  # as serve runs it by default: in memory
        state = mock_state(app)
        environs = pushes(count, run)
        statuses: dict[str, int] = {}

        def start_response(status, headers):
            statuses[status] = statuses.get(status, 0) + 1

        state.journal.findings()  # the spec's validators load on first use: not part of a push
        if profile:
            profile.enable()
        started = time.process_time()
        for environ in environs:
            for _chunk in app.wsgi_app(environ, start_response):
                pass
        cpu = time.process_time() - started
        state.journal.findings()  # judged when read: outside the push
        if profile:
            profile.disable()
        state.close()
        if set(statuses) != {"200 OK"}:
            raise SystemExit(f"not every push was answered 200: {statuses}")
        return cpu / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=16_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--without", default="", help=f"comma-separated parts to switch off: {', '.join(PARTS)}")
    parser.add_argument("--profile", action="store_true", help="print the 25 functions with the most own time")
    args = parser.parse_args()
    parts = [part for part in args.without.split(",") if part]
    profile = cProfile.Profile() if args.profile else None
    results = [one_run(args.pushes, run, parts, profile) for run in range(args.runs)]
    label = f"without {', '.join(parts)}" if parts else "as it is"
    print(f"mock {label}: {statistics.median(results):.1f} us CPU per push (median of "
          f"{', '.join(f'{r:.1f}' for r in results)}; {args.pushes:,} pushes per run)")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
