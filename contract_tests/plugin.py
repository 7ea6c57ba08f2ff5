"""The pytest plugin (entry point ``zammad_cti``): where the contract tests send their requests.

``--target URL``         the CTI endpoint URL, token included (env ``CTI_TARGET``);
                         without it the built-in mock is started on a free port
``--target-config FILE`` the configuration the target is known to run
                         (env ``CTI_TARGET_CONFIG``; default: the documented one)
``--zammad-api-token``   an agent's API token, to read a real Zammad's caller log
                         (env ``ZAMMAD_API_TOKEN``)
"""

from __future__ import annotations

import os

import pytest

from .context import ContractContext, activate
from .target import Target, TargetError

_CONTEXT_KEY = pytest.StashKey[ContractContext]()
PROFILE_ENV = "ZAMMAD_CTI_PROFILE"  # the Zammad version profile the runner's preflight settled on


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("zammad-cti", "Zammad CTI contract tests")
    group.addoption("--target", default=os.environ.get("CTI_TARGET"), metavar="URL",
                    help="CTI endpoint URL of the target, token included (default: start the built-in mock).")
    group.addoption("--target-config", default=os.environ.get("CTI_TARGET_CONFIG"), metavar="FILE",
                    help="Configuration the target runs (JSON/YAML; default: fixtures/documented-config.json).")
    group.addoption("--zammad-api-token", default=os.environ.get("ZAMMAD_API_TOKEN"), metavar="TOKEN",
                    help="API token of a Zammad agent, to check a real Zammad's caller log.")


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
            profile=os.environ.get(PROFILE_ENV) or None,
        )
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[_CONTEXT_KEY] = context
    activate(context)


def pytest_unconfigure(config: pytest.Config) -> None:
    context = config.stash.get(_CONTEXT_KEY, None)
    if context is not None:
        context.close()
        activate(None)


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
