"""The "Done when" figures of `zammad-cti check` against a target of its own configuration, and its broken setups.

    .venv/bin/python benchmarks/check_setup.py

Serves fixtures/staging-example-config.json (a stand-in for a staging Zammad
with another routing table, block list and contacts) and the documented
configuration on free 127.0.0.1 ports, runs the fixtures suite against them
with and without ``--target-config``, then against a port nothing listens on
and with a wrong token. Prints, per run: the fixtures tests run, passed and
skipped, the exit code, the wall-clock time and the lines of output. The
tests (tests/test_check_staging.py) pin the counts, exit codes and line
counts; the times are measured here only.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mock_server import MockServer  # noqa: E402 - after the path: runs from a checkout

CHECK = Path(sys.executable).with_name("zammad-cti")
STAGING = ROOT / "fixtures" / "staging-example-config.json"
DOCUMENTED = ROOT / "fixtures" / "documented-config.json"


def run(label: str, *args: str) -> dict[str, object]:
    started = time.monotonic()
    result = subprocess.run([str(CHECK), "check", *args], capture_output=True, text=True, timeout=600,
                            stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    row = re.search(r"^fixtures\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", output, re.MULTILINE)
    tests, passed, failed, skipped = (int(n) for n in row.groups()) if row else (0, 0, 0, 0)
    preflight = [line for line in output.splitlines() if line.startswith("preflight:")]
    figures = {"run": label, "tests": tests, "passed": passed, "failed": failed, "skipped": skipped,
               "exit": result.returncode, "seconds": round(seconds, 1), "lines": len(output.splitlines()),
               "preflight": preflight[0] if preflight else ""}
    print(f"{label:<44} tests {tests:>3}  passed {passed:>3}  skipped {skipped:>3}  exit {result.returncode}  "
          f"{seconds:5.1f}s  {figures['lines']:>3} lines  {figures['preflight'][:110]}", flush=True)
    return figures


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # closed again: nothing listens there
    rows = []
    with MockServer({"CTI_CONFIG": str(STAGING)}) as staging, MockServer({"CTI_CONFIG": str(DOCUMENTED)}) as documented:
        rows.append(run("built-in mock, documented configuration", "--suite", "fixtures"))
        rows.append(run("mock serving the documented configuration", "--target", documented.endpoint_url,
                        "--suite", "fixtures"))
        rows.append(run("staging mock, --target-config staging", "--target", staging.endpoint_url,
                        "--target-config", str(STAGING), "--suite", "fixtures"))
        rows.append(run("staging mock, no --target-config", "--target", staging.endpoint_url, "--suite", "fixtures"))
        wrong = staging.endpoint_url.rsplit("/", 1)[0] + "/not-the-token-0000"
        rows.append(run("staging mock, wrong token (all suites)", "--target", wrong, "--target-config", str(STAGING)))
    rows.append(run("nothing listening (all suites)", "--target", f"http://127.0.0.1:{closed_port}/api/v1/cti/some-token"))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
