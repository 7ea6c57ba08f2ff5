"""Replay scenarios: load and validate the files under ``fixtures/scenarios``, fill in call IDs.

A scenario file (described field by field in ``fixtures/scenario.schema.json``)
is a few CTI pushes in order, each with the exact answer a real Zammad gives,
and what the caller log must show afterwards. This module turns the files into
:class:`Scenario` objects and, for one run in one encoding, replaces every
``{call:ALIAS}`` placeholder with a call ID that no earlier run used
(:meth:`Scenario.for_run`). Sending and checking is the replay suite's job
(``contract_tests.test_replay``).

A file that does not validate raises :class:`ScenarioError` naming the file
and the place in it, so a broken scenario stops collection instead of
turning into a confusing test failure.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from mock_server.resources import fixtures_dir
from mock_server.zammad.calls import MAX_CALL_ID_LENGTH
from mock_server.zammad.config import MockConfig

from .context import CALL_ID_PREFIX
from .needs import answer_by_rules, expected_error, fill_needs, require_enabled, resolve_needs
from .requests_builder import DEFAULT_ACCEPT, ENCODINGS

SCHEMA_FILE = "scenario.schema.json"
JSON_MEDIA_TYPE = "application/json"
HTML_MEDIA_TYPE = "text/html"
DEFAULT_CONFIG = "documented-config.json"
PLACEHOLDER = re.compile(r"^\{call:([a-z][a-z0-9_]*)\}$")
CALL_ID_KEYS = ("callId", "call_id")


class ScenarioError(ValueError):
    """A scenario file the suite cannot run; the message names the file and what is wrong."""


def scenarios_dir() -> Path:
    """``fixtures/scenarios``, in a source tree or an installed wheel."""
    return fixtures_dir() / "scenarios"


def schema_path() -> Path:
    return fixtures_dir() / SCHEMA_FILE


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True)
class Expectation:
    """What one push must be answered with."""

    status: int
    body: Any = None
    body_matches: Mapping[str, str] | None = None
    error: str | None = None  # a case code (expected_error) instead of status and body
    by_rules: bool = False  # the answer the rules module gives for the request (reject, dial or {})
    html_page: bool = False  # Zammad's HTML error page with this status, not a JSON body

    @property
    def content_type(self) -> str:
        return HTML_MEDIA_TYPE if self.html_page else JSON_MEDIA_TYPE

    def describe(self) -> dict[str, Any]:
        if self.html_page:
            return {"status": self.status, "content_type": HTML_MEDIA_TYPE,
                    "body": f"Zammad's HTML error page (public/{self.status}.html)"}
        if self.body_matches is not None:
            return {"status": self.status, "body_matches": dict(self.body_matches)}
        return {"status": self.status, "body": self.body}

    def mismatch(self, status: int, body: Any) -> str | None:
        """None when ``status`` and ``body`` are as expected, else what differs."""
        if status != self.status:
            return f"status {status}, expected {self.status}"
        if self.html_page:
            return None  # the page's text is Zammad's public/<status>.html, which an admin may change
        if self.body_matches is None:
            return None if same_json(body, self.body) else "body differs"
        if not isinstance(body, dict) or set(body) != set(self.body_matches):
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            return f"body keys {keys}, expected exactly {sorted(self.body_matches)}"
        for key, pattern in self.body_matches.items():
            value = body[key]
            if not isinstance(value, str) or not re.fullmatch(pattern, value):
                return f"body field {key!r} does not match {pattern!r}"
        return None


@dataclass(frozen=True)
class Step:
    name: str
    request: Mapping[str, Any]
    expect: Expectation
    token: str = "valid"  # or "wrong"
    invalid_request: bool = False
    caller_log: Mapping[str, Any] | None = None  # alias -> expected subset, or None (must be absent)
    accept: str | None = DEFAULT_ACCEPT  # the Accept header sent; None: none at all


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: Path
    config_path: Path
    encodings: tuple[str, ...]
    steps: tuple[Step, ...]
    caller_log: Mapping[str, Any] | None = None
    needs: Mapping[str, str] | None = None  # need name -> kind (contract_tests.needs); None: config_path's scenario

    @property
    def fits_any_config(self) -> bool:
        return self.needs is not None

    def bind(self, config: MockConfig, profile: str | None = None) -> Scenario:
        """The scenario with needs, error codes and rule-derived answers made concrete for ``config``.

        Raises :class:`contract_tests.needs.NeedUnmet` when ``config`` lacks a need.
        """
        if self.needs is not None:
            require_enabled(config)
        resolved = resolve_needs(self.needs or {}, config)
        steps = []
        for step in self.steps:
            request = fill_needs(step.request, resolved)
            expect = step.expect
            if expect.error is not None:
                status, body, matches = expected_error(expect.error, profile)
                expect = (Expectation(status, html_page=True) if expect.html_page
                          else Expectation(status, body, matches))
            elif expect.by_rules:
                expect = Expectation(200, answer_by_rules(config, request))
            steps.append(Step(step.name, request, expect, step.token, step.invalid_request,
                              fill_needs(step.caller_log, resolved), step.accept))
        return replace(self, steps=tuple(steps), caller_log=fill_needs(self.caller_log, resolved))

    @property
    def aliases(self) -> list[str]:
        """The call aliases the steps use, in order of first use."""
        found: list[str] = []
        for step in self.steps:
            for alias in _aliases_in(step.request):
                if alias not in found:
                    found.append(alias)
        return found

    def call_ids(self, encoding: str, run_id: str | None = None) -> dict[str, str]:
        """A fresh call ID per alias for one run in ``encoding``."""
        run_id = run_id or secrets.token_hex(6)
        return {alias: make_call_id(self.name, encoding, alias, run_id) for alias in self.aliases}

    def for_run(self, encoding: str, run_id: str | None = None) -> ScenarioRun:
        """The scenario with its placeholders filled for one run in ``encoding``."""
        if encoding not in self.encodings:
            raise ValueError(f"scenario {self.name} is not sent as {encoding} (encodings: {', '.join(self.encodings)})")
        ids = self.call_ids(encoding, run_id)
        steps = tuple(
            replace(step, request=fill(step.request, ids), expect=replace(step.expect, body=fill(step.expect.body, ids)))
            for step in self.steps
        )
        return ScenarioRun(scenario=self, encoding=encoding, call_ids=ids, steps=steps)


@dataclass(frozen=True)
class ScenarioRun:
    """One scenario in one encoding, call IDs filled in: what one test sends."""

    scenario: Scenario
    encoding: str
    call_ids: Mapping[str, str]
    steps: tuple[Step, ...]

    @property
    def label(self) -> str:
        return f"{self.scenario.name}[{self.encoding}]"


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: unlike ``==``, ``true`` is not ``1`` and ``1`` is not ``1.0``."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def make_call_id(scenario: str, encoding: str, alias: str, run_id: str) -> str:
    """``zcti-check-<scenario>-<encoding>-<alias>-<random>``, at most 250 characters.

    The prefix marks the calls as the contract suite's in a real caller log;
    the random part keeps repeated runs against one Zammad from colliding.
    """
    tail = f"-{encoding}-{alias}-{run_id}"
    room = MAX_CALL_ID_LENGTH - len(CALL_ID_PREFIX) - len(tail)
    if room < 1:
        raise ValueError("call ID parts too long")
    return f"{CALL_ID_PREFIX}{scenario[:room]}{tail}"


def fill(value: Any, call_ids: Mapping[str, str]) -> Any:
    """``value`` with every ``{call:ALIAS}`` string replaced by that alias's call ID."""
    if isinstance(value, str):
        match = PLACEHOLDER.match(value)
        if match is None:
            return value
        alias = match.group(1)
        if alias not in call_ids:
            raise KeyError(f"no call ID for alias {alias!r}")
        return call_ids[alias]
    if isinstance(value, list):
        return [fill(item, call_ids) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, call_ids) for key, item in value.items()}
    return value


def _aliases_in(request: Mapping[str, Any]) -> Iterable[str]:
    for key in CALL_ID_KEYS:
        value = request.get(key)
        if isinstance(value, str):
            match = PLACEHOLDER.match(value)
            if match:
                yield match.group(1)


# --- loading ---------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and build one scenario file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON: {exc}") from exc
    return scenario_from_mapping(data, path)


def scenario_from_mapping(data: Any, path: Path) -> Scenario:
    """Validate parsed scenario data (as read from ``path``) and build the :class:`Scenario`."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_explain(error)}" for error in errors[:8]]
        raise ScenarioError(f"{path} is not a valid scenario (see {SCHEMA_FILE}):\n" + "\n".join(lines))

    problems: list[str] = []
    if data["name"] != path.stem:
        problems.append(f"name {data['name']!r} differs from the file name {path.name!r} (use {data['name']}.json)")
    config_path = path.resolve().parent.parent / data.get("config", DEFAULT_CONFIG)
    if not config_path.is_file():
        problems.append(f"config: {config_path} does not exist (names a file in the fixtures directory)")

    steps = tuple(_step(raw) for raw in data["steps"])
    used: list[str] = []
    for number, step in enumerate(steps):
        used += [alias for alias in _aliases_in(step.request) if alias not in used]
        if step.caller_log:
            problems += _unknown_aliases(step.caller_log, used, f"steps/{number}/expect/caller_log")
    caller_log = data.get("caller_log")
    if caller_log:
        problems += _unknown_aliases(caller_log, used, "caller_log")
    if problems:
        raise ScenarioError(f"{path} is not a valid scenario:\n" + "\n".join(f"  {p}" for p in problems))

    return Scenario(
        name=data["name"],
        description=data["description"],
        path=path,
        config_path=config_path,
        encodings=tuple(data.get("encodings", ENCODINGS)),
        steps=steps,
        caller_log=caller_log,
        needs=data.get("needs"),
    )


def _step(raw: Mapping[str, Any]) -> Step:
    expect = raw["expect"]
    return Step(
        name=raw["name"],
        request=dict(raw["request"]),
        expect=Expectation(status=expect.get("status", 200), body=expect.get("body"),
                           body_matches=expect.get("body_matches"), error=expect.get("error"),
                           by_rules=expect.get("rules", False), html_page=expect.get("html_error_page", False)),
        token=raw.get("token", "valid"),
        invalid_request=raw.get("invalid_request", False),
        caller_log=expect.get("caller_log"),
        accept=raw.get("accept", DEFAULT_ACCEPT),
    )


def _unknown_aliases(caller_log: Mapping[str, Any], known: list[str], where: str) -> list[str]:
    return [
        f"{where}: call {alias!r} is not sent by any step before it (known: {', '.join(known) or 'none'})"
        for alias in caller_log
        if alias not in known
    ]


def _where(path: Iterable[Any]) -> str:
    return "/".join(str(part) for part in path) or "(top level)"


def _explain(error: jsonschema.ValidationError) -> str:
    """``where: what``, made specific: the closest sub-error, and the schema's own explanation."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        # The branch the value was meant for is the one whose type it has.
        meant = [sub for sub in error.context if sub.relative_path or sub.validator not in ("type", "required")]
        best = jsonschema.exceptions.best_match(meant)
        if best is not None:
            return f"{_where(best.absolute_path)}: {best.message}"
    message = error.message
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if description and error.validator in ("oneOf", "anyOf", "not", "pattern", "propertyNames"):
        message = f"{message} ({description})"
    return f"{_where(error.absolute_path)}: {message}"


def load_scenarios(directory: str | Path | None = None) -> list[Scenario]:
    """Every ``*.json`` scenario in ``directory`` (default: ``fixtures/scenarios``), sorted by name."""
    directory = Path(directory) if directory else scenarios_dir()
    scenarios = [load_scenario(path) for path in sorted(directory.glob("*.json"))]
    if not scenarios:
        raise ScenarioError(f"no scenario files (*.json) in {directory}")
    return scenarios
