"""Fixture replay: every scenario under ``fixtures/scenarios``, in every encoding it lists.

Each (scenario, encoding) is one test, e.g. ``munich-dial[multipart]``. Its
steps are sent in order over one shared HTTP session; the first answer that
differs from the scenario (status, Content-Type, body) fails the test with the
scenario and step, the request, the masked URL, expected and actual, and a
curl command. The caller log is then compared field by field where the run
can read it: on the built-in mock, or on a real Zammad when an agent's API
token was given (``--zammad-api-token``). The engine is :mod:`contract_tests.replay`.

Scenarios are independent (call IDs of their own), so they are replayed
``--concurrency`` at a time, all before the first test reports; under
``zammad-cti check`` against a target, by a process of its own from the
start of the run (:mod:`contract_tests.ahead`).

Scenarios that assume a configuration the target does not run are skipped,
with a reason naming that configuration.

Run: ``pytest --pyargs contract_tests.test_replay [--target URL]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from contract_tests.context import ContractContext
from contract_tests.plugin import AHEAD
from contract_tests.replay import Outcome, Replayer, every_case, replay_all
from contract_tests.scenarios import Scenario, load_scenarios

pytestmark = pytest.mark.contract_fixtures

SCENARIOS = load_scenarios()


def _cases() -> list[Any]:
    return [pytest.param(scenario, encoding, id=f"{scenario.name}[{encoding}]")
            for scenario, encoding in every_case(SCENARIOS)]


@pytest.fixture(scope="module")
def replayed(request: pytest.FixtureRequest, contract_context: ContractContext) -> Iterator[dict[tuple[str, str], Outcome]]:
    """Every selected (scenario, encoding) replayed up front, ``--concurrency`` at a time: its outcome.

    Against a slow target waiting for each answer in turn is what makes a
    check slow. Each test then reports its own scenario's outcome.
    """
    cases = [(item.callspec.params["scenario"], item.callspec.params["encoding"])
             for item in request.session.items
             if getattr(item, "function", None) is test_scenario and hasattr(item, "callspec")]
    ahead = request.config.stash.get(AHEAD, None)
    if ahead is not None:  # replayed by the replay process (zammad-cti check against a target)
        outcomes = ahead.outcomes(cases)
    else:
        replayer = Replayer(contract_context)
        try:
            outcomes = replay_all(replayer, cases, contract_context.case_concurrency)
        finally:
            replayer.close()
    yield {(scenario.name, encoding): outcome for (scenario, encoding), outcome in zip(cases, outcomes, strict=True)}


@pytest.mark.parametrize(("scenario", "encoding"), _cases())
def test_scenario(scenario: Scenario, encoding: str, replayed: dict[tuple[str, str], Outcome]) -> None:
    __tracebackhide__ = True
    problem = replayed[(scenario.name, encoding)]
    if problem is not None:
        raise problem
