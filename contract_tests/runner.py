"""``zammad-cti check``: run the contract suites against a target and summarise them.

The suites are ordinary pytest tests (``contract_tests/test_*.py``, one
``contract_<suite>`` marker each, see :data:`contract_tests.plugin.SUITES`).
:func:`run_check` runs the chosen ones in a pytest subprocess::

    python -P -m pytest --pyargs contract_tests -m "contract_fixtures or ..." \\
        -c <tmp>/pytest.ini --rootdir <package dir> --confcutdir <package dir> \\
        -p no:cacheprovider -p contract_tests._results --assert=plain

A subprocess, because the plugin reads its options when pytest starts and a
run can be interrupted without leaving a mock thread behind. The run is sealed
off from wherever it is started: its own ini (the repository's
``pyproject.toml``, with ``testpaths`` and ``addopts``, is never read), the
package directory as rootdir and working directory (so the caller's directory
is neither read, as by a stray ``schemathesis.toml``, nor written), the
Hypothesis database in the run's temporary directory, no ``PYTEST_ADDOPTS``.
It works the same from a source checkout, an editable install and a wheel.

Secrets stay out of sight: the target URL and the API token reach the child
through its environment (``CTI_TARGET``, ``ZAMMAD_API_TOKEN``), never its
command line, and everything the child prints, every failure and the JUnit
file go through :class:`Masker`, which replaces the tokens with ``***``.

Exit codes (:data:`EXIT_CODES`): 0 every selected test passed; 1 the target
failed the contract; 2 usage error; 3 nothing was tested (a selected suite has
no tests, or every test was skipped); 4 the run itself broke (a suite could not
be collected, pytest stopped with an internal or usage error); 130 interrupted.
"""

from __future__ import annotations

import codecs
import dataclasses
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

from .target import MASK, Target, TargetError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOTHING_RAN = 3
EXIT_BROKEN = 4
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "every selected test passed",
    EXIT_FAILED: "the target failed the contract",
    EXIT_USAGE: "usage error",
    EXIT_NOTHING_RAN: "nothing was tested (a selected suite has no tests, or all were skipped)",
    EXIT_BROKEN: "the test run itself broke (collection or pytest error)",
    EXIT_INTERRUPTED: "interrupted",
}

# The names contract_tests._results reads (not imported from there: it needs pytest).
RESULTS_ENV = "ZAMMAD_CTI_RESULTS"
SUITES_ENV = "ZAMMAD_CTI_SUITES"
PACKAGE_DIR = Path(__file__).resolve().parent

# The only pytest settings a check run sees (written to a temporary ini).
_PYTEST_INI = """\
[pytest]
# Written by zammad-cti check (contract_tests/runner.py): the contract suites
# run with these settings only, whatever configuration surrounds them.
python_files = test_*.py
python_classes = Test*
python_functions = test_*
junit_suite_name = zammad-cti-check
junit_family = xunit2
"""

# Variables of the caller's environment the child must not inherit: they
# would change what runs (extra options) or what it runs against (the runner
# sets the target and tokens explicitly, or removes them).
_SCRUBBED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
                 "CTI_TARGET", "CTI_TARGET_CONFIG", "ZAMMAD_API_TOKEN")

# A PBX gives up on a newCall answer after a few seconds (Asterisk's CURL() default, most
# vendors' HTTP hooks) and then dials without Zammad's caller ID or block decision.
PBX_WAIT_SECONDS = 3.0
DEFAULT_TIMEOUT = 10.0
CREATED_CALLS_LISTED = 20  # listed at the end; more go to --created-calls FILE

FAILURES_IN_FULL = 12  # quiet mode: the rest get one line each

_PROGRESS_MARK = {"passed": ".", "failed": "F", "error": "E", "skipped": "s"}


class CheckUsageError(ValueError):
    """Options a check cannot run with; the message says which and why."""


def available_suites() -> dict[str, str]:
    """Suite name -> description (the plugin's table; importing it needs pytest)."""
    _require_test_extras()
    from .plugin import SUITES

    return dict(SUITES)


def parse_suites(values: Iterable[str] | None) -> list[str]:
    """``["fixtures,examples", "fuzz"]`` -> ``["fixtures", "examples", "fuzz"]``; none given: all suites."""
    known = available_suites()
    chosen: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in known:
                raise CheckUsageError(f"unknown suite {name!r}; choose from {', '.join(known)} (comma-separated)")
            if name not in chosen:
                chosen.append(name)
    return chosen or list(known)


def _require_test_extras() -> None:
    missing = [name for name in ("pytest", "schemathesis", "hypothesis") if importlib.util.find_spec(name) is None]
    if missing:
        raise CheckUsageError(
            f"zammad-cti check needs {', '.join(missing)}, which install with the package: "
            "pip install --force-reinstall zammad-cti-harness"
        )


@dataclass
class CheckOptions:
    target: str | None = None  # CTI endpoint URL, token included; None: the built-in mock
    target_config: Path | None = None
    suites: Sequence[str] = ()
    junit: Path | None = None
    api_token: str | None = None
    verbosity: int = 0  # 0: progress and summary; 1: pytest's output too; 2: pytest -v
    zammad: str | None = None  # the Zammad version assumed; None: the configuration's, else one probe tells
    concurrency: int = 8  # scenarios of the fixtures suite replayed at once
    timeout: float = DEFAULT_TIMEOUT  # seconds per request
    created_calls: Path | None = None  # write the call IDs the run created here instead of listing them
    profile: str | None = None  # the Zammad version profile assumed (None: the current one)


# --- masking -------------------------------------------------------------------------------------


class Masker:
    """Replaces every secret with ``***``, also when it is spelled a little differently.

    A wrong-token test shows the tokens it sent, and those are often derived
    from the real one (case swapped, last character dropped, a suffix added).
    So besides each secret and its URL-quoted spelling, every long part of it
    (at least three quarters, and 12 characters or more) is masked, ignoring case.
    """

    MIN_PART = 12

    def __init__(self, secrets: Iterable[str | None]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            for spelling in {secret, quote(secret, safe=""), quote(secret, safe="/")}:
                variants.update(self._parts(spelling))
        # Longest first, so that a secret containing another is masked whole.
        self.secrets = sorted(variants, key=len, reverse=True)
        self._lowered = [variant.lower() for variant in self.secrets]
        self._pattern = (re.compile("|".join(re.escape(v) for v in self.secrets), re.IGNORECASE)
                         if self.secrets else None)

    @classmethod
    def _parts(cls, secret: str) -> set[str]:
        if len(secret) <= cls.MIN_PART:
            return {secret}
        least = max(cls.MIN_PART, -(-len(secret) * 3 // 4))
        return {secret[i:j] for i in range(len(secret)) for j in range(i + least, len(secret) + 1)}

    def mask(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def matches(self, text: str) -> Iterator[re.Match[str]]:
        return self._pattern.finditer(text) if self._pattern is not None else iter(())

    def unsafe_tail(self, text: str) -> int:
        """How many characters at the end of ``text`` could begin a secret."""
        lowered = text[-max(map(len, self._lowered), default=0):].lower()
        keep = 0
        for variant in self._lowered:
            for size in range(min(len(variant) - 1, len(lowered)), keep, -1):
                if lowered.endswith(variant[:size]):
                    keep = size
                    break
        return keep

    def stream(self) -> MaskingStream:
        return MaskingStream(self)


class MaskingStream:
    """Masks text that arrives in arbitrary chunks: holds back a tail that could start a secret."""

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._pending = ""

    def feed(self, text: str) -> str:
        raw = self._pending + text
        cut = len(raw) - self._masker.unsafe_tail(raw)
        for match in self._masker.matches(raw):
            if match.start() < cut < match.end():
                cut = match.start()  # never emit half of a secret
                break
        self._pending = raw[cut:]
        return self._masker.mask(raw[:cut])

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return self._masker.mask(text)


# --- results -------------------------------------------------------------------------------------


@dataclass
class TestResult:
    nodeid: str
    suite: str
    outcome: str  # passed, failed, error, skipped
    duration: float
    failure: str | None = None
    skip_reason: str | None = None


@dataclass
class SuiteStats:
    tests: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    duration: float = 0.0

    def add(self, result: TestResult) -> None:
        self.tests += 1
        self.duration += result.duration
        if result.outcome == "passed":
            self.passed += 1
        elif result.outcome == "skipped":
            self.skipped += 1
        else:
            self.failed += 1


@dataclass
class RunResults:
    tests: list[TestResult] = field(default_factory=list)
    collect_errors: list[tuple[str, str]] = field(default_factory=list)
    session: dict[str, Any] | None = None
    created_calls: list[str] = field(default_factory=list)  # newCalls the target accepted (2xx)
    unanswered_calls: list[str] = field(default_factory=list)  # newCalls it never answered
    notes: list[str] = field(default_factory=list)
    answer_times: dict[str, list[float]] = field(default_factory=dict)

    def add_record(self, record: dict[str, Any]) -> TestResult | None:
        kind = record.get("kind")
        if kind == "test":
            result = TestResult(record["nodeid"], record["suite"], record["outcome"], float(record["duration"]),
                                record.get("failure"), record.get("skip_reason"))
            self.tests.append(result)
            return result
        if kind == "collect_error":
            self.collect_errors.append((record["nodeid"], record["failure"]))
        elif kind == "session":
            self.session = record
        elif kind == "facts":
            self.created_calls = list(record.get("created_calls") or [])
            self.unanswered_calls = list(record.get("unanswered_calls") or [])
            self.notes = [str(note) for note in record.get("notes") or []]
            self.answer_times = {k: [float(t) for t in v] for k, v in (record.get("answer_times") or {}).items()}
        return None

    def by_suite(self, suites: Sequence[str]) -> dict[str, SuiteStats]:
        stats = {suite: SuiteStats() for suite in suites}
        for result in self.tests:
            stats.setdefault(result.suite, SuiteStats()).add(result)
        return stats


class _ResultsTail:
    """Reads the records the child appends to the results file, complete lines only."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self._path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        records = []
        for line in lines:
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records


# --- the run ---------------------------------------------------------------------------------------


class _Terminated(Exception):
    """SIGTERM reached the runner: stop the child as for Ctrl-C."""


def describe_target(options: CheckOptions) -> str:
    if options.target:
        return Target.from_url(options.target).masked_url
    config = options.target_config or "the documented configuration"
    return f"the built-in mock, started by the run, with {config}"


def assumed_profile(options: CheckOptions) -> tuple[Any, str]:
    """The Zammad version whose answers the suites expect, and how it was chosen (one probe at most)."""
    from mock_server import load_config
    from mock_server.resources import documented_config_path
    from mock_server.zammad.profiles import load_profile

    from .context import detect_profile

    if options.zammad:
        return load_profile(options.zammad), "as --zammad says"
    config = load_config(options.target_config or documented_config_path())
    if config.zammad:
        return config.profile, "as the configuration's 'zammad' says"
    if not options.target:
        return config.profile, "the built-in mock's default"
    found = detect_profile(Target.from_url(options.target), config)
    if found is not None:
        return found, "detected from the target's answer to one newCall with an invalid direction"
    return config.profile, "the default (the probe's answer matched no known version)"


def _secrets(options: CheckOptions) -> list[str | None]:
    """Every token a run could print: the target's (or the mock configuration's) and the API token."""
    secrets: list[str | None] = [options.api_token]
    if options.target:
        secrets.append(Target.from_url(options.target).token)
    else:
        from mock_server import load_config
        from mock_server.resources import documented_config_path

        secrets.append(load_config(options.target_config or documented_config_path()).token)
    return secrets


def _validate(options: CheckOptions) -> CheckOptions:
    """Absolute paths (the child runs elsewhere), a well-formed target, a readable configuration."""
    _require_test_extras()
    suites = parse_suites(options.suites)
    target_config = Path(options.target_config).resolve() if options.target_config else None
    junit = Path(options.junit).resolve() if options.junit else None
    if options.target:
        try:
            Target.from_url(options.target)
        except TargetError as exc:
            raise CheckUsageError(_mask_bad_target(options.target, str(exc))) from None
    if target_config is not None:
        from mock_server import ConfigError, load_config

        try:
            load_config(target_config)
        except (ConfigError, OSError) as exc:
            raise CheckUsageError(f"--target-config {target_config}: {exc}") from exc
    if junit is not None and not junit.parent.is_dir():
        raise CheckUsageError(f"--junit {junit}: the directory {junit.parent} does not exist")
    if options.zammad:
        from mock_server.zammad.profiles import UnknownProfile, load_profile

        try:
            load_profile(options.zammad)
        except UnknownProfile as exc:
            raise CheckUsageError(f"--zammad: {exc}") from None
    if options.concurrency < 1:
        raise CheckUsageError("--concurrency must be at least 1")
    if options.timeout <= 0:
        raise CheckUsageError("--timeout must be more than 0 seconds")
    created = Path(options.created_calls).resolve() if options.created_calls else None
    if created is not None and not created.parent.is_dir():
        raise CheckUsageError(f"--created-calls {created}: the directory {created.parent} does not exist")
    return replace(options, target_config=target_config, suites=suites, junit=junit, created_calls=created)


def _mask_bad_target(url: str, message: str) -> str:
    """A URL that is no CTI endpoint URL still holds the token, usually as its last path segment."""
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    guesses = [segments[-1] if segments and len(segments[-1]) >= 6 else None, parts.query or None]
    return Masker(guesses).mask(message)


def pytest_command(suites: Sequence[str], ini_path: Path, verbosity: int = 0,
                   junit_path: Path | None = None, color: bool = False, ahead: Path | None = None) -> list[str]:
    """The child's command line (no secrets on it: they travel in the environment)."""
    command = [
        # -P: the working directory (the package) must not become a top-level import path.
        sys.executable, "-P", "-m", "pytest",
        "-c", str(ini_path), "--rootdir", str(PACKAGE_DIR), "--confcutdir", str(PACKAGE_DIR),
        "-p", "no:cacheprovider", "-p", "contract_tests._results",
        # The suites raise their own failure text (contract_tests.failures), so pytest's
        # assertion rewriting adds nothing but start-up time: it rewrites every module of
        # each plugin's distribution (all of schemathesis), on every run when bytecode
        # is not cached (PYTHONDONTWRITEBYTECODE, read-only installs).
        "--assert=plain",
        # A suite module that cannot be imported must not hide the other suites' results.
        "--continue-on-collection-errors",
        "-m", " or ".join(f"contract_{suite}" for suite in suites),
        "--color=yes" if color else "--color=no",
    ]
    if ahead is not None:
        command += ["--cti-replay-ahead", str(ahead)]
    if verbosity <= 0:
        command += ["-q", "--tb=short"]
    elif verbosity >= 2:
        command += ["-v", "-rfEs"]
    else:
        command += ["-rfE"]
    if junit_path is not None:
        command += ["--junitxml", str(junit_path)]
    return [*command, "--pyargs", "contract_tests"]


def child_environment(options: CheckOptions, workdir: Path, results_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED_ENV}
    env[RESULTS_ENV] = str(results_path)
    env[SUITES_ENV] = ",".join(options.suites)
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(workdir / ".hypothesis")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    if options.target:
        env["CTI_TARGET"] = options.target
    if options.target_config:
        env["CTI_TARGET_CONFIG"] = str(options.target_config)
    if options.api_token:
        env["ZAMMAD_API_TOKEN"] = options.api_token
    if options.zammad:
        env["CTI_ZAMMAD"] = options.zammad
    env["ZAMMAD_CTI_TIMEOUT"] = str(options.timeout)
    env["ZAMMAD_CTI_CONCURRENCY"] = str(options.concurrency)
    return env


class _OutputPump(threading.Thread):
    """Reads the child's output, masks it, echoes it when verbose, keeps the tail for diagnostics."""

    def __init__(self, pipe: Any, masker: Masker, echo: TextIO | None) -> None:
        super().__init__(name="zammad-cti-check-output", daemon=True)
        self._pipe = pipe
        self._stream = masker.stream()
        self._echo = echo
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.tail: deque[str] = deque(maxlen=400)
        self._lock = threading.Lock()

    def run(self) -> None:
        fd = self._pipe.fileno()
        while True:
            chunk = os.read(fd, 65536)
            final = not chunk
            text = self._stream.feed(self._decoder.decode(chunk, final=final))
            if final:
                text += self._stream.flush()
            self._emit(text)
            if final:
                return

    def _emit(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            self.tail.extend(text.splitlines(keepends=True))
            if self._echo is not None:
                self._echo.write(text)
                self._echo.flush()

    def text(self) -> str:
        with self._lock:
            return "".join(self.tail)


class _Progress:
    """Quiet mode: one line per suite, a mark per test (``.`` passed, ``F`` failed, ``E`` error, ``s`` skipped)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._suite: str | None = None

    def show(self, result: TestResult) -> None:
        if result.suite != self._suite:
            if self._suite is not None:
                self._out.write("\n")
            self._suite = result.suite
            self._out.write(f"{result.suite:<9} ")
        self._out.write(_PROGRESS_MARK.get(result.outcome, "?"))
        self._out.flush()

    def end(self) -> None:
        if self._suite is not None:
            self._out.write("\n")
            self._out.flush()
            self._suite = None


def _stop_child(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C: let the child finish its own KeyboardInterrupt handling, then insist."""
    if process.poll() is not None:
        return
    try:
        try:
            process.wait(timeout=0.5)  # a terminal's Ctrl-C reached the child's process group too
            return
        except subprocess.TimeoutExpired:
            pass
        if os.name == "posix":
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                pass
        process.terminate()
        try:
            process.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            pass
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: no more patience
    process.kill()
    process.wait()


def _config_name(options: CheckOptions) -> str:
    return Path(options.target_config).name if options.target_config else "documented-config.json"


def _assumptions(options: CheckOptions) -> str:
    """The report header's line on what the expected answers assume."""
    profile = options.profile or "current"
    return (f"assumes: configuration {_config_name(options)} (--target-config), Zammad profile {profile}; "
            f"{options.timeout:g}s per request (a PBX waits about {PBX_WAIT_SECONDS:g}s for a newCall answer)\n")


def _preflight(options: CheckOptions) -> Any:
    from mock_server import load_config
    from mock_server.resources import documented_config_path

    from .preflight import run_preflight

    config = load_config(options.target_config or documented_config_path())
    return run_preflight(Target.from_url(options.target or ""), config, _config_name(options), options.timeout,
                         options.profile)


def run_check(options: CheckOptions, out: TextIO | None = None) -> int:
    """Run the suites of ``options`` and print progress, failures and a summary; return the exit code.

    Raises :class:`CheckUsageError` for options that cannot run (exit code 2 in the CLI).
    """
    out = out or sys.stdout
    options = _validate(options)
    masker = Masker(_secrets(options))
    verbose = options.verbosity > 0

    out.write(f"zammad-cti check: {describe_target(options)}\n")
    profile, how = assumed_profile(options)
    options = dataclasses.replace(options, zammad=profile.name, profile=profile.name)
    out.write(f"Zammad version assumed: {profile.name} ({profile.releases}), {how}\n")
    out.write(f"suites: {', '.join(options.suites)}\n")
    preflight_calls: list[str] = []
    if options.target:
        started = time.monotonic()
        found = _preflight(options)
        preflight_calls = found.created_calls
        options = replace(options, profile=found.profile or options.profile)
        out.write(_assumptions(options))
        if found.problem is not None:
            out.write(f"preflight: {masker.mask(found.problem)}\n")
            out.write(f"\nSETUP: the suites did not run ({time.monotonic() - started:.1f}s, exit {found.exit_code})\n")
            out.flush()
            return found.exit_code
        for note in found.notes:
            out.write(f"preflight: {masker.mask(note)}\n")
        out.write("note: every scenario adds caller-log entries to this target (callIds start with zcti-check-)\n")
    else:
        out.write(_assumptions(options))
    out.flush()

    with tempfile.TemporaryDirectory(prefix="zammad-cti-check-") as tmp:
        workdir = Path(tmp)
        ini_path = workdir / "pytest.ini"
        ini_path.write_text(_PYTEST_INI, encoding="utf-8")
        results_path = workdir / "results.jsonl"
        results_path.touch()
        junit_tmp = workdir / "junit.xml" if options.junit else None
        color = verbose and hasattr(out, "isatty") and out.isatty()
        env = child_environment(options, workdir, results_path)
        # Against a target, the fixtures suite is replayed by a process of its own from now on, while
        # pytest starts and collects (contract_tests.ahead); the built-in mock lives in pytest's process.
        ahead = None
        if options.target and "fixtures" in options.suites:
            from .ahead import AheadProcess

            ahead = AheadProcess(workdir / "fixtures-outcomes.jsonl", env, PACKAGE_DIR)
        command = pytest_command(options.suites, ini_path, options.verbosity, junit_tmp, color,
                                 ahead.outcomes if ahead else None)

        results = RunResults()
        tail = _ResultsTail(results_path)
        progress = None if verbose else _Progress(out)
        started = time.monotonic()
        interrupted = False
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=PACKAGE_DIR, env=env)
        pump = _OutputPump(process.stdout, masker, out if verbose else None)
        pump.start()
        previous_sigterm = _install_sigterm_handler()
        try:
            while True:
                if ahead is not None:
                    ahead.check()
                finished = process.poll() is not None
                for record in tail.read():
                    result = results.add_record(record)
                    if result is not None and progress is not None:
                        progress.show(result)
                if finished:
                    break
                time.sleep(0.1)
            pump.join()
        except (KeyboardInterrupt, _Terminated):
            interrupted = True
            out.write("\ninterrupted: stopping the test run ...\n")
            out.flush()
            _stop_child(process)
            pump.join(timeout=5)
            for record in tail.read():
                results.add_record(record)
        finally:
            _restore_sigterm_handler(previous_sigterm)
            if ahead is not None:
                ahead.stop()
            if process.stdout is not None:
                process.stdout.close()
        elapsed = time.monotonic() - started
        if progress is not None:
            progress.end()

        if junit_tmp is not None and options.junit is not None:
            _write_junit(junit_tmp, options.junit, masker, out)

        if interrupted:
            out.write(f"\ninterrupted after {len(results.tests)} tests ({elapsed:.1f}s); the run was stopped\n")
            out.flush()
            return EXIT_INTERRUPTED
        results.created_calls = [*preflight_calls, *results.created_calls]
        return _report(options, results, process.returncode, pump.text(), masker, elapsed, verbose, out)


def _install_sigterm_handler() -> Any:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return None

    def _raise(_signum: int, _frame: Any) -> None:
        raise _Terminated()

    return signal.signal(signal.SIGTERM, _raise)


def _restore_sigterm_handler(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _write_junit(source: Path, destination: Path, masker: Masker, out: TextIO) -> None:
    if not source.exists():
        out.write(f"warning: pytest wrote no JUnit report; {destination} not written\n")
        return
    text = source.read_text(encoding="utf-8", errors="replace")
    destination.write_text(masker.mask(text), encoding="utf-8")


# --- the report ------------------------------------------------------------------------------------


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line.strip() else line for line in text.rstrip().splitlines())


def _report(options: CheckOptions, results: RunResults, returncode: int | None, output: str, masker: Masker,
            elapsed: float, verbose: bool, out: TextIO) -> int:
    write = out.write
    failures = [r for r in results.tests if r.outcome in ("failed", "error")]

    if results.collect_errors:
        write("\nERRORS (suite modules that could not be collected)\n")
        for nodeid, text in results.collect_errors:
            write(f"\n[collection] {nodeid}\n{_indent(masker.mask(text))}\n")
    if failures:
        write("\nFAILURES\n")
        shown = failures if verbose else failures[:FAILURES_IN_FULL]
        for result in shown:
            label = "ERROR" if result.outcome == "error" else "FAILED"
            write(f"\n{label} [{result.suite}] {masker.mask(result.nodeid)}\n")
            write(_indent(masker.mask(result.failure or "(no failure text)")) + "\n")
        if len(shown) < len(failures):
            write(f"\n... and {len(failures) - len(shown)} more (-v or --junit shows each in full):\n")
            for result in failures[len(shown):]:
                first_line = (result.failure or "").strip().splitlines()[:1] or [""]
                write(f"  [{result.suite}] {masker.mask(result.nodeid)}: {masker.mask(first_line[0])[:160]}\n")

    stats = results.by_suite(options.suites)
    total = SuiteStats()
    for suite_stats in stats.values():
        total.tests += suite_stats.tests
        total.passed += suite_stats.passed
        total.failed += suite_stats.failed
        total.skipped += suite_stats.skipped
        total.duration += suite_stats.duration
    write("\n" + _table(stats, total, results.answer_times) + "\n")

    skip_reasons = Counter(masker.mask(r.skip_reason or "") for r in results.tests if r.outcome == "skipped")
    for reason, count in skip_reasons.most_common(5):
        write(f"  skipped {count}: {reason or '(no reason given)'}\n")
    # A suite that ran nothing cannot vouch for anything: say which and why.
    idle: list[str] = []
    for suite in options.suites:
        suite_stats = stats[suite]
        if suite_stats.tests == 0:
            idle.append(f"suite {suite!r} has no tests (is its module missing from contract_tests?)")
        elif suite_stats.passed == 0 and suite_stats.failed == 0:
            reasons = Counter(r.skip_reason or "(no reason given)" for r in results.tests
                              if r.suite == suite and r.outcome == "skipped")
            idle.append(f"every test of suite {suite!r} was skipped: {masker.mask(reasons.most_common(1)[0][0])}")
    for line in idle:
        write(f"  {line}\n")
    write(_slow_new_calls(results.answer_times))
    for note in results.notes:
        write(f"  note: {masker.mask(note)}\n")

    session = results.session
    pytest_failed = session is None or (session.get("exitstatus") not in (0, 1, 5))
    broken = bool(results.collect_errors) or pytest_failed
    if failures:
        code = EXIT_FAILED
        verdict = f"FAILED: {total.failed} of {total.tests} tests failed"
    elif broken:
        code = EXIT_BROKEN
        verdict = "BROKEN: the contract tests could not run completely"
    elif idle or total.passed == 0:
        code = EXIT_NOTHING_RAN
        empty = [suite for suite in options.suites if stats[suite].passed == 0]
        verdict = f"NOTHING TESTED: suite(s) {', '.join(empty)} ran no test"
    else:
        code = EXIT_OK
        verdict = f"PASSED: {total.passed} tests passed"
    if total.skipped and code in (EXIT_OK, EXIT_FAILED):
        verdict += f", {total.skipped} skipped"
    write(_created_calls(options, results.created_calls, results.unanswered_calls))
    write(f"\n{verdict} in {elapsed:.1f}s against {describe_target(options)} (exit {code})\n")

    if pytest_failed and not verbose:
        lines = output.splitlines()[-60:]
        write(f"\npytest exited with status {returncode}; the end of its output:\n")
        write(_indent("\n".join(lines), "  | ") + "\n")
    out.flush()
    return code


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def _millis(values: Sequence[float] | None, fraction: float | None) -> str:
    if not values:
        return "-"
    value = (max(values) if fraction is None else percentile(values, fraction)) * 1000
    return f"{value:.1f}ms" if value < 10 else f"{value:.0f}ms"


def _table(stats: dict[str, SuiteStats], total: SuiteStats, answer_times: dict[str, list[float]] | None = None) -> str:
    """Per suite: tests by outcome, time in its tests, and the target's answer times (p50, p95, max)."""
    answer_times = answer_times or {}
    header = (f"{'suite':<10} {'tests':>6} {'passed':>7} {'failed':>7} {'skipped':>8} {'time':>8}"
              f" {'p50':>7} {'p95':>7} {'max':>7}")
    rows = [header, "-" * len(header)]
    everything = [t for suite, times in answer_times.items() if suite in stats for t in times]
    for suite, s in [*stats.items(), ("total", total)]:
        if suite == "total":
            rows.append("-" * len(header))
        times = everything if suite == "total" else answer_times.get(suite)
        rows.append(f"{suite:<10} {s.tests:>6} {s.passed:>7} {s.failed:>7} {s.skipped:>8} {s.duration:>7.1f}s"
                    f" {_millis(times, 0.5):>7} {_millis(times, 0.95):>7} {_millis(times, None):>7}")
    return "\n".join(rows)


def _slow_new_calls(answer_times: dict[str, list[float]]) -> str:
    """A finding when newCall answers come later than a PBX waits for them."""
    from .context import NEW_CALL_TIMES

    times = answer_times.get(NEW_CALL_TIMES) or []
    slow = [t for t in times if t > PBX_WAIT_SECONDS]
    if not slow:
        return ""
    return (f"  finding slow-new-call-answer: {len(slow)} of {len(times)} newCall answers took longer than "
            f"{PBX_WAIT_SECONDS:g}s (max {max(slow):.1f}s); a PBX has given up by then and dials without "
            "Zammad's caller ID or block decision\n")


def _created_calls(options: CheckOptions, call_ids: Sequence[str], unanswered: Sequence[str] = ()) -> str:
    """The call IDs the run left in the target's caller log: the check deletes nothing.

    Only newCalls the target accepted (2xx) are listed and written: one it
    refused (401, 422, 500...) created nothing. One it never answered may or
    may not be logged; those are named apart, never written to the file.
    """
    if not options.target or not (call_ids or unanswered):
        return ""
    what = "newCalls the target accepted (2xx); refused ones created nothing and are not listed"
    if options.created_calls is not None:
        options.created_calls.write_text("".join(f"{call_id}\n" for call_id in call_ids), encoding="utf-8")
        text = (f"\ncreated calls: {len(call_ids)} call IDs written to {options.created_calls} ({what}; "
                "nothing was deleted)\n")
    else:
        shown = call_ids[:CREATED_CALLS_LISTED]
        more = (f"\n  ... and {len(call_ids) - len(shown)} more (--created-calls FILE lists all)"
                if len(shown) < len(call_ids) else "")
        lines = "".join(f"\n  {call_id}" for call_id in shown)
        text = (f"\ncreated calls: {len(call_ids)} ({what}; nothing was deleted, an admin can remove them):"
                f"{lines}{more}\n")
    if unanswered:
        listed = ", ".join(unanswered[:5]) + (", ..." if len(unanswered) > 5 else "")
        text += (f"  {len(unanswered)} more newCalls got no answer; the target may have logged them: {listed}\n")
    return text
