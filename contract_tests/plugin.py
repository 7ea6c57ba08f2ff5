"""The pytest plugin (entry point ``zammad_cti``): where the contract tests send their requests.

``--target URL``         the CTI endpoint URL, token included (env ``CTI_TARGET``);
                         without it the built-in mock is started on a free port
``--target-config FILE`` the configuration the target is known to run
                         (env ``CTI_TARGET_CONFIG``; default: the documented one)
``--zammad-api-token``   an agent's API token, to read a real Zammad's caller log
                         (env ``ZAMMAD_API_TOKEN``)
``--zammad VERSION``     the Zammad version the target is (``current``, ``2021``; env
                         ``CTI_ZAMMAD``); default: the configuration's ``zammad``, else one
                         probe of the target tells
``--cti-concurrency N``  requests the suites have in flight at once at most (env
                         ``ZAMMAD_CTI_CONCURRENCY``, default 8); 1: one after the other
``--cti-timeout SECONDS`` the per-request limit (env ``ZAMMAD_CTI_TIMEOUT``, default 10)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mock_server.zammad.profiles import UnknownProfile

from . import pipeline
from .ahead import AheadOutcomes
from .context import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, ContractContext, activate
from .target import Target, TargetError

_CONTEXT_KEY = pytest.StashKey[ContractContext]()
AHEAD = pytest.StashKey[AheadOutcomes]()  # the fixtures' outcomes from the replay process, when there is one


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("zammad-cti", "Zammad CTI contract tests")
    group.addoption("--target", default=os.environ.get("CTI_TARGET"), metavar="URL",
                    help="CTI endpoint URL of the target, token included (default: start the built-in mock).")
    group.addoption("--target-config", default=os.environ.get("CTI_TARGET_CONFIG"), metavar="FILE",
                    help="Configuration the target runs (JSON/YAML; default: fixtures/documented-config.json).")
    group.addoption("--zammad-api-token", default=os.environ.get("ZAMMAD_API_TOKEN"), metavar="TOKEN",
                    help="API token of a Zammad agent, to check a real Zammad's caller log.")
    group.addoption("--zammad", default=os.environ.get("CTI_ZAMMAD"), metavar="VERSION",
                    help="Zammad version of the target: current or 2021 (default: the configuration's "
                         "'zammad', else detected with one probe).")
    group.addoption("--cti-concurrency", type=int, metavar="N",
                    default=int(os.environ.get("ZAMMAD_CTI_CONCURRENCY") or DEFAULT_CONCURRENCY),
                    help=f"Requests in flight at once at most (default {DEFAULT_CONCURRENCY}; 1: one after the other).")
    group.addoption("--cti-replay-ahead", metavar="OUTCOMES",
                    help="The fixture scenarios' outcomes, as a replay process started beside pytest writes them "
                         "(zammad-cti check against a target; see contract_tests.ahead).")
    group.addoption("--cti-timeout", type=float, metavar="SECONDS",
                    default=float(os.environ.get("ZAMMAD_CTI_TIMEOUT") or DEFAULT_TIMEOUT),
                    help=f"Per-request limit in seconds (default {DEFAULT_TIMEOUT:g}).")


# The suites `zammad-cti check --suite` selects, one marker each.
SUITES = {
    "fixtures": "fixture replay: the scenarios under fixtures/scenarios",
    "examples": "every named example of openapi.yaml, sent by schemathesis",
    "fuzz": "schemathesis coverage and fuzzing phases, token pinned",
    "stateful": "random call life cycles (Hypothesis state machine)",
}


def pytest_configure(config: pytest.Config) -> None:
    for suite, text in SUITES.items():
        config.addinivalue_line("markers", f"contract_{suite}: {text}")
    try:
        context = ContractContext.create(
            target_url=config.getoption("--target"),
            config_path=config.getoption("--target-config"),
            api_token=config.getoption("--zammad-api-token"),
            zammad=config.getoption("--zammad"),
            concurrency=max(1, config.getoption("--cti-concurrency")),
            timeout=config.getoption("--cti-timeout"),
        )
        if context.zammad:
            context.profile  # noqa: B018 - an unknown name is a usage error now, not a failure per test
    except (TargetError, UnknownProfile) as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[_CONTEXT_KEY] = context
    activate(context)
    outcomes = config.getoption("--cti-replay-ahead")
    if outcomes:
        config.stash[AHEAD] = AheadOutcomes(Path(outcomes), context.slots, context.concurrency)


def pytest_unconfigure(config: pytest.Config) -> None:
    ahead = config.stash.get(AHEAD, None)
    if ahead is not None:
        ahead.close()
    context = config.stash.get(_CONTEXT_KEY, None)
    if context is not None:
        context.close()
        activate(None)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A pipelined test: Hypothesis draws, the pipeline sends; the test fails once every answer is judged."""
    # A schemathesis test's item holds the Hypothesis wrapper; the function written here is test_function.
    if not pipeline.is_pipelined(getattr(pyfuncitem, "test_function", pyfuncitem.obj)):
        return (yield)
    context = pyfuncitem.config.stash[_CONTEXT_KEY]
    with pipeline.running(context.case_concurrency) as running:
        result = yield
    failure = running.failure_report()
    if failure is not None:
        raise failure
    return result


def pytest_report_header(config: pytest.Config) -> str:
    return f"zammad-cti target: {config.stash[_CONTEXT_KEY].describe()}"


@pytest.fixture(scope="session")
def contract_context(pytestconfig: pytest.Config) -> ContractContext:
    """The run's target and configuration; starts the built-in mock on first use."""
    return pytestconfig.stash[_CONTEXT_KEY]


@pytest.fixture(scope="session")
def cti_target(contract_context: ContractContext) -> Target:
    """The target's endpoint (``.endpoint_url``, ``.masked_url``, ``.caller_log_url``)."""
    return contract_context.target
