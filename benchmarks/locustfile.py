"""Load test for a Zammad CTI endpoint: Locust users that behave like PBX lines.

Each user places one simulated call after another, drawn from the same
scenario as ``zammad-cti simulate`` (``pbx_simulator``): newCall,
the ring time, answer, the talk time, hangup, in all four encodings, with
Zammad's answers honoured (a reject hangs up at once). A request counts as a
failure when the target's answer differs from the one a real Zammad gives.

Requests are named by event, so Locust's statistics read ``newCall``,
``answer`` and ``hangup`` and never show the URL, which carries the token::

    locust -f benchmarks/locustfile.py --headless -u 20 -r 10 -t 30s --stop-timeout 10s \\
        --cti-speed 50 --cti-target http://127.0.0.1:3000/api/v1/cti/TOKEN

(``--stop-timeout`` lets the calls in flight hang up when the time is up.)

Options (each also an environment variable): ``--cti-target`` (CTI_TARGET),
the full endpoint URL; or ``--host`` with ``--cti-token`` (CTI_TOKEN);
``--cti-scenario`` (CTI_SCENARIO), ``--cti-speed`` (CTI_SPEED),
``--cti-seed`` (CTI_SEED), ``--cti-timeout`` (CTI_TIMEOUT). See
docs/load-testing.md.
"""

from __future__ import annotations

import itertools
import logging
import random
import sys
from dataclasses import dataclass
from typing import Any

import gevent
from locust import HttpUser, events, task
from locust.runners import WorkerRunner

from contract_tests.requests_builder import request_kwargs
from contract_tests.target import Target, TargetError
from pbx_simulator.simulation import (
    DEFAULT_TIMEOUT,
    Answer,
    CallFlow,
    FlowBuilder,
    ScenarioFileError,
    Step,
    load_scenario,
    play,
)

logger = logging.getLogger("zammad_cti.locust")


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    group = parser  # not an argument group: only Locust's own parser knows is_secret
    group.add_argument("--cti-target", env_var="CTI_TARGET", default="", is_secret=True,
                       help="Full CTI endpoint URL, token included (https://zammad.example.com/api/v1/cti/TOKEN); "
                            "sets --host when that is not given.")
    group.add_argument("--cti-token", env_var="CTI_TOKEN", default="", is_secret=True,
                       help="The endpoint's token alone, with --host as the base URL.")
    group.add_argument("--cti-scenario", env_var="CTI_SCENARIO", default="",
                       help="Scenario file [default: fixtures/simulator/default-mix.json].")
    group.add_argument("--cti-speed", env_var="CTI_SPEED", type=float, default=1.0,
                       help="Divides the scenario's ring, talk and pause times [default: 1, real time].")
    group.add_argument("--cti-seed", env_var="CTI_SEED", type=int, default=None,
                       help="Draw the same calls on every run (call IDs stay new).")
    group.add_argument("--cti-timeout", env_var="CTI_TIMEOUT", type=float, default=DEFAULT_TIMEOUT,
                       help=f"Seconds to wait for each answer [default: {DEFAULT_TIMEOUT:g}].")


class SetupError(ValueError):
    """Options that do not name a usable endpoint or scenario."""


@dataclass
class _Plan:
    """What every user of this process shares: the token's path, the flow builder, the call counter."""

    path: str
    builder: FlowBuilder
    timeout: float
    counter: Any  # itertools.count of calls: gevent runs one greenlet at a time
    users: Any  # itertools.count of users, to seed each user's pauses

    @classmethod
    def from_options(cls, options: Any, host: str | None) -> _Plan:
        token = options.cti_token or ""
        if options.cti_target:
            try:
                target = Target.from_url(options.cti_target)
            except TargetError as exc:
                raise SetupError(f"--cti-target: {exc}") from exc
            if token and token != target.token:
                raise SetupError("--cti-token differs from the token in --cti-target: give one of them")
            token = target.token
        if not token:
            raise SetupError("no CTI endpoint: give --cti-target URL (the full endpoint URL), "
                             "or --host BASE_URL with --cti-token TOKEN (or CTI_TARGET / CTI_TOKEN)")
        if not host:
            raise SetupError("no base URL: give --host (e.g. https://zammad.example.com) or --cti-target")
        if not options.cti_speed > 0:
            raise SetupError(f"--cti-speed must be above 0, not {options.cti_speed}")
        try:
            scenario = load_scenario(options.cti_scenario or None)
        except ScenarioFileError as exc:
            raise SetupError(str(exc)) from exc
        return cls(path=f"/api/v1/cti/{token}", builder=FlowBuilder(scenario, options.cti_speed, options.cti_seed),
                   timeout=options.cti_timeout, counter=itertools.count(), users=itertools.count())


_plans: dict[tuple[Any, ...], _Plan] = {}


def _plan(environment: Any) -> _Plan:
    """This process's plan; a worker builds it from the options its master sent."""
    options = environment.parsed_options
    key = (options.cti_target, options.cti_token, options.cti_scenario, options.cti_speed, options.cti_seed,
           options.cti_timeout, environment.host)
    if key not in _plans:
        _plans[key] = _Plan.from_options(options, environment.host)
    return _plans[key]


@events.init.add_listener
def _check_options(environment: Any, **_kwargs: Any) -> None:
    """Fail at start, not in every user: the endpoint and the scenario must be usable."""
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return  # a worker gets its options from the master
    if not environment.host and options.cti_target:
        try:
            environment.host = Target.from_url(options.cti_target).base_url
        except TargetError:
            pass  # reported just below
    if options.headless or options.autostart:
        try:
            _plan(environment)
        except SetupError as exc:
            logger.error("%s", exc)
            sys.exit(2)


class PbxLine(HttpUser):
    """One PBX line: places a simulated call, pauses (the scenario's between_calls_seconds), again."""

    def on_start(self) -> None:
        self.plan = _plan(self.environment)
        self.rng = random.Random(f"{self.plan.builder.seed}:pause:{next(self.plan.users)}")

    def wait_time(self) -> float:
        return self.plan.builder.pause(self.rng)

    @task
    def call(self) -> None:
        flow = self.plan.builder.build(next(self.plan.counter))
        play(flow, self._send, gevent.sleep)

    def _send(self, flow: CallFlow, step: Step) -> Answer:
        kwargs = request_kwargs(step.params, flow.encoding)
        with self.client.post(self.plan.path, name=step.event, catch_response=True, timeout=self.plan.timeout,
                              **kwargs) as response:
            latency = response.request_meta["response_time"] / 1000
            if response.error is not None and not response.status_code:
                answer = Answer(None, latency=latency, error=type(response.error).__name__)
            else:
                answer = Answer.from_http(response.status_code, response.headers.get("Content-Type", ""),
                                          response.content or b"", latency)
            mismatch = step.mismatch(answer)
            if mismatch is None:
                response.success()
            else:  # no call ID, no URL: one line per kind of failure, and never the token
                response.failure(f"{flow.outcome} [{flow.encoding}]: {mismatch}")
        return answer
