"""How long `zammad-cti check` takes against a slow target: the mock with and without ``--fault latency:MS``.

    .venv/bin/python benchmarks/check_latency.py [--latency 50] [--suite NAMES] [--concurrency 8]

Starts `zammad-cti serve` on a free 127.0.0.1 port (once plain, once with the
fault), runs the check against it and prints the wall-clock times and their
ratio. The figures in docs/check.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

BIN = Path(sys.executable).parent
TOKEN = "documented-token-3f9c2a"  # fixtures/documented-config.json


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed_check(latency_ms: int | None, suites: str, concurrency: int) -> tuple[float, int, str]:
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
        elapsed = time.monotonic() - started
        table = [line for line in result.stdout.splitlines() if line.split()[:1] and line.split()[0] in
                 (*suites.split(","), "total")]
        return elapsed, result.returncode, "\n".join(table)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=50, help="milliseconds per answer (default 50)")
    parser.add_argument("--suite", default="fixtures,examples,fuzz,stateful")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    plain, plain_code, plain_table = timed_check(None, args.suite, args.concurrency)
    slow, slow_code, slow_table = timed_check(args.latency, args.suite, args.concurrency)
    print(f"without latency: {plain:.1f}s (exit {plain_code})\n{plain_table}\n")
    print(f"with latency:{args.latency}: {slow:.1f}s (exit {slow_code})\n{slow_table}\n")
    print(json.dumps({"suites": args.suite, "concurrency": args.concurrency, "latency_ms": args.latency,
                      "plain_s": round(plain, 1), "latency_s": round(slow, 1), "ratio": round(slow / plain, 2)}))


if __name__ == "__main__":
    main()
