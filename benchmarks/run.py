"""Benchmark the mock against Stoplight Prism and a bare WSGI app, under the same wrk load.

    .venv/bin/python benchmarks/run.py                  # the table (about a minute)
    .venv/bin/python benchmarks/run.py --memory         # also RSS after 10,000 and 1,000,000 requests

Everything listens on 127.0.0.1. The servers, started in turn:

- ``mock``: exactly as ``zammad-cti serve`` runs it (granian embedded in one
  process, ASGI, in memory); ``mock-persist``: the same with ``--journal``
  (written behind);
- ``prism-fast`` / ``prism``: ``@stoplight/prism-cli`` 5 mocking the same
  ``openapi.yaml``, at ``-v error`` (its fastest) and at its default
  (``npm ci`` in benchmarks/ first; skipped with a note when missing);
- ``ceiling``: ``bare_app.py`` answering ``{}``, served as serve serves the
  mock (``serve_app.py``); ``ceiling-gunicorn``: the same app in WSGI under
  gunicorn gthread 2 workers x 8; ``ceiling-wsgi``: in WSGI under granian
  with 32 threads (how serve ran before);
- ``rules``: ``rules_app.py``, the mock's own body parsing and Zammad rules
  without caller log or journal, served as the mock: what the rest costs;
- ``no-journal``, ``no-caller-log``, ``neither``: the mock with parts
  switched off (``variants.py``), served as the mock: where the time goes.

Each gets the same wrk load (``cti_mix.lua``: newCalls in JSON and form
encodings with unique call IDs, plus answer/hangup life cycles), after a
short warm-up. The script prints req/s, p50/p99 latency, RSS (the server's
whole process tree) and the ratios mock/Prism and mock/ceiling.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
TOKEN = "documented-token-3f9c2a"
# The mock with parts switched off (variants.py): where the time goes, not servers to use.
VARIANTS = {"no-journal": "journal", "no-caller-log": "caller-log", "neither": "journal,caller-log"}


@dataclass
class Result:
    name: str
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    non_2xx: int = 0
    socket_errors: str = ""
    rss_mb: float = 0.0
    note: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def tree_rss_mb(root_pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        ppid = re.search(r"^PPid:\s+(\d+)", status, re.M)
        kb = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        parents[pid] = int(ppid.group(1)) if ppid else 0
        rss[pid] = int(kb.group(1)) if kb else 0
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total / 1024


class Server:
    """A server process in its own session, so that stopping it stops its workers too."""

    def __init__(self, name: str, argv: list[str], port: int, cwd: Path = ROOT,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.port = name, port
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=env)
        wait_for_port(port, self.process)

    def rss_mb(self) -> float:
        return tree_rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # our own child's group, nothing else
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def same_server_as_mock(app: str, port: int) -> list[str]:
    """``app`` (an ASGI app from benchmarks/) served as ``zammad-cti serve`` serves the mock."""
    return [sys.executable, str(HERE / "serve_app.py"), app, str(port)]


def granian_wsgi(app: str, port: int, threads: int = 32) -> list[str]:
    """granian's WSGI worker as serve ran it before: one worker process, 32 Python threads."""
    return [str(BIN / "granian"), "--interface", "wsgi", "--working-dir", str(HERE), "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--blocking-threads", str(threads),
            "--log-level", "critical", app]


def gunicorn(app: str, port: int) -> list[str]:
    """The comparison: gunicorn gthread, 2 workers x 8 threads (what serve ran before)."""
    return [str(BIN / "gunicorn"), "--chdir", str(HERE), "-b", f"127.0.0.1:{port}", "-k", "gthread",
            "-w", "2", "--threads", "8", "--log-level", "warning", "--reuse-port", app]


def start(name: str, args: argparse.Namespace, journal_dir: Path) -> Server | None:
    port = free_port()
    if name in ("mock", "mock-persist"):
        argv = [str(BIN / "zammad-cti"), "serve", "--port", str(port), "--threads", str(args.server_threads)]
        if name == "mock-persist":
            argv += ["--journal", str(journal_dir / f"bench-{port}.sqlite3")]
        return Server(name, argv, port)
    if name in VARIANTS:
        env = {**os.environ, "ZCTI_BENCH_WITHOUT": VARIANTS[name]}
        return Server(name, same_server_as_mock("variants:asgi_app", port), port, env=env)
    if name in ("ceiling", "rules"):
        return Server(name, same_server_as_mock(f"{'bare' if name == 'ceiling' else 'rules'}_app:asgi_app", port),
                      port)
    if name == "ceiling-gunicorn":
        return Server(name, gunicorn("bare_app:app", port), port)
    if name == "ceiling-wsgi":
        return Server(name, granian_wsgi("bare_app:app", port), port)
    if name in ("prism", "prism-fast"):
        prism = HERE / "node_modules" / ".bin" / "prism"
        if not prism.exists():
            print("prism: not installed (run `npm ci` in benchmarks/); skipped", file=sys.stderr)
            return None
        argv = [str(prism), "mock", "-h", "127.0.0.1", "-p", str(port), str(ROOT / "openapi.yaml")]
        return Server(name, argv + (["-v", "error"] if name == "prism-fast" else []), port)
    raise ValueError(name)


def run_wrk(port: int, args: argparse.Namespace, seconds: float) -> Result:
    url = f"http://127.0.0.1:{port}/api/v1/cti/{TOKEN}"
    argv = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{int(seconds)}s", "--latency",
            "--timeout", "5s", "-s", str(HERE / "cti_mix.lua"), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    out = done.stdout
    result = Result(name="")
    result.requests = int(re.search(r"(\d+) requests in", out).group(1))
    result.rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    result.p50_ms = _ms(re.search(r"^\s+50%\s+([\d.]+\w+)", out, re.M).group(1))
    result.p99_ms = _ms(re.search(r"^\s+99%\s+([\d.]+\w+)", out, re.M).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result.non_2xx = int(non_2xx.group(1)) if non_2xx else 0
    errors = re.search(r"Socket errors: (.*)", out)
    result.socket_errors = errors.group(1) if errors else ""
    return result


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def measure(name: str, args: argparse.Namespace, journal_dir: Path) -> Result:
    server = start(name, args, journal_dir)
    if server is None:
        return Result(name=name, note="not installed")
    try:
        run_wrk(server.port, args, args.warmup)
        result = run_wrk(server.port, args, args.duration)
        result.name, result.rss_mb = name, server.rss_mb()
        return result
    finally:
        server.stop()


def memory_check(args: argparse.Namespace, journal_dir: Path) -> tuple[float, float, int]:
    """RSS of the mock after about 10,000 requests and after ``args.memory_requests``."""
    server = start("mock", args, journal_dir)
    try:
        done = run_wrk(server.port, args, 3).requests
        while done < 10_000:
            done += run_wrk(server.port, args, 2).requests
        early = server.rss_mb()
        print(f"memory: {done:,} requests, RSS {early:.1f} MB", file=sys.stderr)
        while done < args.memory_requests:
            done += run_wrk(server.port, args, 30).requests
            print(f"memory: {done:,} requests, RSS {server.rss_mb():.1f} MB", file=sys.stderr)
        return early, server.rss_mb(), done
    finally:
        server.stop()


def table(results: list[Result]) -> str:
    lines = ["| server | req/s | p50 ms | p99 ms | RSS MB | requests | non-2xx | note |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.rss_mb:.1f} | "
                     f"{r.requests:,} | {r.non_2xx:,} | {r.note or r.socket_errors} |")
    by_name = {r.name: r for r in results}
    mock = by_name.get("mock")
    for other in ("prism-fast", "prism", "ceiling", "ceiling-gunicorn", "ceiling-wsgi", "rules"):
        if mock and other in by_name and by_name[other].rps:
            lines.append(f"\nmock/{other}: {mock.rps / by_name[other].rps:.2f}x req/s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="mock,mock-persist,prism-fast,prism,ceiling,ceiling-gunicorn,ceiling-wsgi,"
                                             "rules,no-journal,no-caller-log,neither")
    parser.add_argument("--duration", type=float, default=10, help="seconds of measured load per server")
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--server-threads", type=int, default=8, help="serve's --threads (the admin routes' threads)")
    parser.add_argument("--memory", action="store_true", help="also measure RSS growth over many requests")
    parser.add_argument("--memory-requests", type=int, default=1_000_000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="zammad-cti-bench-") as tmp:
        results = [measure(name, args, Path(tmp)) for name in args.servers.split(",")]
        print(f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration:.0f}s, cti_mix.lua; "
              f"granian embedded, one process; {os.cpu_count()} cores\n")
        print(table(results))
        if args.memory:
            early, late, done = memory_check(args, Path(tmp))
            print(f"\nmemory: RSS {early:.1f} MB after ~10,000 requests, {late:.1f} MB after {done:,} "
                  f"(growth {late - early:+.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
