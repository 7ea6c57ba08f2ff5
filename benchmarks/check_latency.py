"""How long `zammad-cti check` takes against a slow target: the mock with and without ``--fault latency:MS``.

    .venv/bin/python benchmarks/check_latency.py [--latency 50] [--repeat 3] [--concurrency 8] [--suites ...]

For the full check (all four suites) and for each suite on its own, starts
`zammad-cti serve` on a free 127.0.0.1 port, once plain and once with the
fault, runs the check against it and takes the wall-clock time of the check
(the server's start is not counted). Plain and slow runs alternate, ``--repeat``
times, so that other load on the machine hits both alike; the medians and
their ratio are printed, and a JSON line at the end. A run that does not
exit 0 is shown with the end of its output. The figures in docs/check.md
come from this script.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
TOKEN = "documented-token-3f9c2a"  # fixtures/documented-config.json
ALL = "fixtures,examples,fuzz,stateful"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed_check(latency_ms: int | None, suites: str, concurrency: int) -> tuple[float, int, str]:
    """Seconds the check took, its exit code and its output."""
    port = _free_port()
    command = [str(BIN / "zammad-cti"), "serve", "--port", str(port)]
    if latency_ms:
        command += ["--fault", f"latency:{latency_ms}"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/__admin/health", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise SystemExit("the mock did not start") from None
                time.sleep(0.1)
        started = time.monotonic()
        result = subprocess.run(
            [str(BIN / "zammad-cti"), "check", "--target", f"http://127.0.0.1:{port}/api/v1/cti/{TOKEN}",
             "--suite", suites, "--concurrency", str(concurrency)],
            capture_output=True, text=True, timeout=900,
        )
        return time.monotonic() - started, result.returncode, result.stdout + result.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=50, help="milliseconds per answer (default 50)")
    parser.add_argument("--repeat", type=int, default=3, help="plain/slow pairs per configuration (default 3)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--suites", nargs="+", default=[ALL, *ALL.split(",")],
                        help="the configurations to time (default: all four suites, then each on its own)")
    args = parser.parse_args()
    figures = []
    for suites in args.suites:
        times: dict[str, list[float]] = {"plain": [], "slow": []}
        for _ in range(args.repeat):
            for kind, latency in (("plain", None), ("slow", args.latency)):
                seconds, code, output = timed_check(latency, suites, args.concurrency)
                times[kind].append(seconds)
                if code != 0:
                    print(f"!! {suites} {kind}: exit {code}\n" + "\n".join(output.splitlines()[-40:]), flush=True)
        plain, slow = statistics.median(times["plain"]), statistics.median(times["slow"])
        figures.append({"suites": suites, "plain_s": round(plain, 2), "latency_s": round(slow, 2),
                        "ratio": round(slow / plain, 2),
                        "runs": {kind: [round(t, 2) for t in runs] for kind, runs in times.items()}})
        print(f"{'all four' if suites == ALL else suites:<10} plain {plain:5.1f}s   latency:{args.latency} "
              f"{slow:5.1f}s   ratio {slow / plain:4.2f}   (runs: {figures[-1]['runs']})", flush=True)
    print(json.dumps({"concurrency": args.concurrency, "latency_ms": args.latency, "repeat": args.repeat,
                      "figures": figures}))


if __name__ == "__main__":
    main()
