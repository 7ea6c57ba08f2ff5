"""What a contract run knows: the target, the configuration it is known to run, and the mocks it started.

Without ``--target`` the built-in mock is started (on first use, on a free
127.0.0.1 port) with ``--target-config``; scenarios that assume another
configuration get a mock of their own. Against an external target they are
skipped with a reason instead: only its admin can change its configuration.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from mock_server import MockConfig, MockServer, load_config
from mock_server.resources import documented_config_path
from mock_server.zammad.profiles import Profile, load_profile, profile_names

from .target import Target

CALL_ID_PREFIX = "zcti-check-"
DEFAULT_CONCURRENCY = 8  # requests in flight at once at most (zammad-cti check --concurrency)
DEFAULT_TIMEOUT = 10.0  # seconds per request (zammad-cti check --timeout)
_RUN_ID = uuid.uuid4().hex[:12]
_SERIAL = itertools.count(1)


def new_call_id(tag: str = "") -> str:
    """A callId unique to this run, recognisably ours: ``zcti-check-<run>-<tag><serial>``.

    Repeated runs against one staging Zammad never collide on a callId.
    """
    return f"{CALL_ID_PREFIX}{_RUN_ID}-{tag}{next(_SERIAL):05d}"


# What the run did to the target, for the summary (written out by contract_tests._results).
_record_lock = threading.Lock()
CREATED_CALL_IDS: dict[str, None] = {}  # in the order the target accepted them
UNANSWERED_CALL_IDS: dict[str, None] = {}
ANSWER_TIMES: dict[str, list[float]] = {}


def note_created_call(call_id: str) -> None:
    """A newCall the target accepted (2xx): its caller log holds this call ID now (the check deletes nothing)."""
    with _record_lock:
        CREATED_CALL_IDS.setdefault(call_id, None)
        UNANSWERED_CALL_IDS.pop(call_id, None)


def note_unanswered_call(call_id: str) -> None:
    """A newCall that got no answer (timeout, connection lost): the target may or may not have logged it."""
    with _record_lock:
        if call_id not in CREATED_CALL_IDS:
            UNANSWERED_CALL_IDS.setdefault(call_id, None)


RUN_NOTES: list[str] = []  # said once in the summary, e.g. that the caller log refused the API token


def note_once(text: str) -> bool:
    """Add ``text`` to the run's notes; False when it was noted before."""
    with _record_lock:
        if text in RUN_NOTES:
            return False
        RUN_NOTES.append(text)
        return True


NEW_CALL_TIMES = "newCall"  # the key of ANSWER_TIMES for newCall answers, of any suite
_running_suite: list[str | None] = [None]  # the suite of the test running now (contract_tests._results sets it)


def set_running_suite(suite: str | None) -> None:
    _running_suite[0] = suite


def current_suite() -> str | None:
    """The suite a request sent now is for: the running test's (the replay process: fixtures)."""
    return _running_suite[0]


def facts() -> dict[str, Any]:
    """What the run did to the target, for the summary."""
    with _record_lock:
        return {"created_calls": list(CREATED_CALL_IDS), "unanswered_calls": list(UNANSWERED_CALL_IDS),
                "notes": list(RUN_NOTES), "answer_times": {suite: list(times) for suite, times in ANSWER_TIMES.items()}}


def merge_facts(found: dict[str, Any]) -> None:
    """Add what another process of the run (the replay process, contract_tests.ahead) did to the target."""
    for call_id in found.get("created_calls") or ():
        note_created_call(call_id)
    for call_id in found.get("unanswered_calls") or ():
        note_unanswered_call(call_id)
    for note in found.get("notes") or ():
        note_once(note)
    with _record_lock:
        for suite, times in (found.get("answer_times") or {}).items():
            ANSWER_TIMES.setdefault(suite, []).extend(float(t) for t in times)


def note_answer_time(suite: str, seconds: float, new_call: bool = False) -> None:
    """How long the target took to answer one push of ``suite`` (newCalls counted again on their own)."""
    with _record_lock:
        ANSWER_TIMES.setdefault(suite, []).append(seconds)
        if new_call:
            ANSWER_TIMES.setdefault(NEW_CALL_TIMES, []).append(seconds)


_current: ContractContext | None = None


@dataclass
class ContractContext:
    config_path: Path
    config: MockConfig
    target_url: str | None = None
    api_token: str | None = field(default=None, repr=False)
    zammad: str | None = None  # --zammad: the version the target is assumed to be
    concurrency: int = DEFAULT_CONCURRENCY  # requests in flight at once at most, over all suites
    timeout: float = DEFAULT_TIMEOUT  # seconds per request
    _target: Target | None = None
    _profile: Profile | None = None
    profile_source: str = ""  # how the profile was chosen, for the report header
    _mocks: dict[Path, MockServer] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    slots: threading.BoundedSemaphore = field(init=False, repr=False)  # one per request in flight

    def __post_init__(self) -> None:
        self.slots = threading.BoundedSemaphore(max(1, self.concurrency))

    def session(self) -> requests.Session:
        """A session for requests to the target: at most ``concurrency`` of the run's requests at once."""
        from .transport import target_session  # transport reads this module's notes

        return target_session(self.slots)

    @classmethod
    def create(cls, target_url: str | None, config_path: str | Path | None, api_token: str | None = None,
               zammad: str | None = None, concurrency: int = DEFAULT_CONCURRENCY,
               timeout: float = DEFAULT_TIMEOUT) -> ContractContext:
        path = Path(config_path) if config_path else documented_config_path()
        context = cls(config_path=path.resolve(), config=load_config(path), target_url=target_url, api_token=api_token,
                      zammad=zammad, concurrency=concurrency, timeout=timeout)
        if target_url:
            context._target = Target.from_url(target_url)
        return context

    @property
    def uses_builtin_mock(self) -> bool:
        return not self.target_url

    @property
    def case_concurrency(self) -> int:
        """Generated cases (schemathesis, state machines) in flight at once: ``concurrency`` against a target.

        Against the built-in mock, one: it answers from this very process in
        microseconds, so more threads would only wait for the interpreter
        (measured: about half a second more per ``zammad-cti check``).
        """
        return 1 if self.uses_builtin_mock else self.concurrency

    @property
    def token(self) -> str:
        """Known before any server starts: the URL's token, else the configuration's."""
        return self._target.token if self._target else self.config.token

    @property
    def target(self) -> Target:
        if self._target is None:
            mock = self.mock_for(self.config_path)
            self._target = Target.from_url(mock.endpoint_url, builtin_mock=True)
        return self._target

    @property
    def profile(self) -> Profile:
        """The Zammad version whose answers are expected: --zammad, the configuration's, or the target's own."""
        if self._profile is None:
            if self.zammad:
                self._profile, self.profile_source = load_profile(self.zammad), "--zammad"
            elif self.config.zammad:
                self._profile, self.profile_source = self.config.profile, f"'zammad' of {self.config_path.name}"
            elif self.uses_builtin_mock:
                self._profile, self.profile_source = self.config.profile, "the built-in mock's default"
            else:
                found = detect_profile(self.target, self.config)
                self._profile = found or self.config.profile
                self.profile_source = ("detected from the target's answer to an invalid direction" if found else
                                       "default: the target's answer to an invalid direction matched no profile")
        return self._profile

    def describe(self) -> str:
        if self.uses_builtin_mock:
            where = self._target.masked_url if self._target else "a free 127.0.0.1 port, started on first use"
            target = f"built-in mock ({where}), configuration {self.config_path}"
        else:
            target = f"{self.target.masked_url}, assumed configuration {self.config_path}"
        profile = self.profile
        return f"{target}; Zammad {profile.name} ({profile.releases}), {self.profile_source}"

    def mock_for(self, config_path: Path) -> MockServer:
        """A built-in mock running ``config_path`` (one per configuration, started once)."""
        config_path = Path(config_path).resolve()
        with self._lock:
            mock = self._mocks.get(config_path)
            if mock is None:
                # The contract suites read the caller log as Zammad's agent would; a configuration
                # without agents gets the mock's open caller log (Zammad itself would answer 403).
                config: Any = str(config_path)
                if self.zammad:  # the built-in mock answers as the version the run assumes
                    config = dataclasses.replace(load_config(config_path), zammad=load_profile(self.zammad).name)
                mock = MockServer({"CTI_CONFIG": config, "OPEN_CALLER_LOG": True}).start()
                self._mocks[config_path] = mock
            return mock

    def target_for(self, config_path: Path) -> Target | None:
        """The target that runs ``config_path``, or None when the run cannot provide one."""
        config_path = Path(config_path).resolve()
        if config_path == self.config_path or _same_behaviour(load_config(config_path), self.config):
            return self.target
        if self.uses_builtin_mock:
            return Target.from_url(self.mock_for(config_path).endpoint_url, builtin_mock=True)
        return None

    def close(self) -> None:
        with self._lock:
            for mock in self._mocks.values():
                mock.stop()
            self._mocks.clear()


def _same_behaviour(a: MockConfig, b: MockConfig) -> bool:
    """Two configurations answer pushes alike (the token is the target's own)."""
    return a.integration == b.integration and a.cti_config == b.cti_config and a.contacts == b.contacts


def activate(context: ContractContext | None) -> None:
    global _current
    _current = context


def current_context() -> ContractContext:
    """The run's context, for code that pytest does not hand fixtures to (schemathesis checks)."""
    if _current is None:
        raise RuntimeError("no contract run is active: the zammad_cti pytest plugin sets it up")
    return _current


def caller_log_headers(context: ContractContext) -> dict[str, Any]:
    """A real Zammad serves the caller log to agents only: use an API token when given."""
    return {"Authorization": f"Token token={context.api_token}"} if context.api_token else {}


def detect_profile(target: Target, config: MockConfig, timeout: float = 10) -> Profile | None:
    """One probe: a newCall with an invalid direction, whose 422 text differs between Zammad versions.

    With the integration switched off the 422 is the "disabled" text, which differs too.
    """
    params = {"event": "newCall", "direction": "zammad-cti-version-probe", "callId": new_call_id("probe"),
              "from": "493023125741", "to": "498912345678"}
    try:
        response = requests.post(target.endpoint_url, json=params, headers={"Accept": "application/json"},
                                 timeout=timeout)
        body = response.json()
    except (requests.RequestException, ValueError):
        return None
    for name in profile_names():
        profile = load_profile(name)
        for code in ("invalid-direction", "feature-disabled"):
            spec = profile.answers[code]
            if response.status_code == spec["status"] and body == {"error": spec["error"]}:
                return profile
    return None
