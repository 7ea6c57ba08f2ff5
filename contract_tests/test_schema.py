"""The contract, sent by schemathesis: every named example, then coverage and fuzzing cases.

Run through the ``zammad_cti`` plugin (``--target URL``, else the built-in
mock)::

    pytest --pyargs contract_tests.test_schema -m contract_examples
    pytest --pyargs contract_tests.test_schema -m contract_fuzz

How the suite reaches the target
    The spec is loaded at import time with a configuration of its own
    (a ``schemathesis.toml`` lying around does not change the suite), so
    nothing here may start a server. The ``token`` path parameter is pinned,
    for every phase, to the mask ``***``: cases, schemathesis' curl commands
    and reports, pytest's tracebacks and Hypothesis' output only ever show
    ``.../api/v1/cti/***``. The real endpoint comes in at the last moment:
    each ``case.call`` gets the base URL of ``current_context().target``
    (which starts the built-in mock on first use) and a :class:`TokenSession`
    that swaps the masked endpoint for the real one as the request leaves.
    The token is thus never part of a case (an unpinned token would make every
    case a documented 401 that tests nothing).

callIds
    Every ``callId``/``call_id`` a case carries is replaced, just before the
    call, by ``CALL_ID_PREFIX`` + a per-run id + a counter, so examples and
    generated calls are recognisable in a staging Zammad's caller log and
    never collide with an earlier run's (a collision would only yield
    Zammad's "This object already exists." and test nothing). Hence the suite's
    own check ``fresh_call_id_is_no_duplicate``: a target that answers a
    storable newCall with that 500 would otherwise pass every routing rule.

Checks
    schemathesis' response schema, status code and content type conformance,
    ``positive_data_acceptance``, plus every rule of :mod:`contract_tests.checks`
    registered as a schemathesis check of the same name. Switched off, on
    purpose:

    ``not_a_server_error``
        Zammad answers 500 for duplicate and out-of-order events (a
        ``newCall`` for a used callId, an ``answer`` for an unknown one: the
        ``answer``/``hangup`` examples sent on their own are such). The
        project's ``only_lifecycle_5xx`` replaces it: any other 5xx, and any
        500 with another body or for another event, still fails.
    ``negative_data_rejection``
        Zammad's controller checks ``direction`` and ``event`` and nothing
        else: ``to: 123``, an unknown attribute or a ``user`` of any shape is
        accepted, and on a form body a type-mutated value is a valid string
        once on the wire. The schema's ``required`` lists say what a PBX
        should send, not what Zammad refuses; the refusals Zammad does make
        are asserted exactly by ``invalid_direction_is_rejected`` and
        ``unknown_event_is_rejected``.
    ``unsupported_method`` and ``allow_header_conformance``
        Zammad routes every unknown request to its catch-all "page doesn't
        exist" answer, a 404 without ``Allow`` (PATCH gets Rails' HTML 404
        page); holding the target to 405 would fail the real server.

schemathesis' failure (an exception group) is re-raised as a plain
``AssertionError``, its text passed through ``Target.mask`` once more.

Concurrency
    Both tests are :func:`contract_tests.pipeline.pipelined`: Hypothesis
    draws the cases (examples, coverage, fuzzing) in the test's thread, and
    up to ``--concurrency`` of them are sent and checked at once; the test
    fails after the last answer, with the first case of each distinct
    failure in full. ``--concurrency 1``, and the built-in mock (which
    answers from this process: :attr:`ContractContext.case_concurrency`),
    send them one after the other.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from mock_server.resources import openapi_path
from mock_server.zammad.calls import call_id_of

from . import checks, pipeline
from .context import CALL_ID_PREFIX, current_context, new_call_id
from .failures import contract_failure
from .requests_builder import ENCODINGS, request_kwargs
from .target import MASK, Target
from .transport import SessionPerThread, target_session
from .wire import sent_params

PUSH_PATH = "/api/v1/cti/{token}"
_ENCODED_MASK = quote(MASK, safe="")  # how a multipart case's URL shows the mask
CALL_ID_KEYS = ("callId", "call_id")
FUZZ_MAX_EXAMPLES = 75

# Checks every schemathesis test here runs; see the module docstring for the ones left out.
_SWITCHED_OFF = ("not_a_server_error", "negative_data_rejection", "unsupported_method", "allow_header_conformance")


def _load_schema(phases: Mapping[str, Any]) -> Any:
    config = SchemathesisConfig.from_dict({
        "phases": dict(phases),
        "checks": {name: {"enabled": False} for name in _SWITCHED_OFF},
        # The caller log has no parameters worth fuzzing: examples and coverage reach it.
        "operations": [{"include-operation-id": "ctiCallerLog", "phases": {"fuzzing": {"enabled": False}}}],
    })
    schema = schemathesis.openapi.from_path(openapi_path(), config=config)
    # The token is pinned as the mask: see TokenSession for where the real one goes in.
    schema.config.update(parameters={"path.token": MASK})
    return schema


examples_schema = _load_schema({
    # fill-missing: the caller log has no request examples; without it its test would send nothing.
    "examples": {"enabled": True, "fill-missing": True}, "coverage": {"enabled": False},
    "fuzzing": {"enabled": False}, "stateful": {"enabled": False},
})
fuzz_schema = _load_schema({
    "examples": {"enabled": False}, "coverage": {"enabled": True},
    "fuzzing": {"enabled": True, "generation": {"max-examples": FUZZ_MAX_EXAMPLES}},
    "stateful": {"enabled": False},
})


# --- unique, recognisable callIds ----------------------------------------------------------




def rewrite_call_ids(container: Any) -> None:
    """Give every callId in ``container`` (a body or the query) a fresh one of this run.

    Equal callIds stay equal and distinct ones distinct. Only non-blank
    strings are replaced: a blank, non-string or over-long callId is the point
    of its (negative) case, and an over-long one is padded back to its length.
    """
    if not isinstance(container, dict):
        return
    fresh: dict[str, str] = {}
    for key in CALL_ID_KEYS:
        value = container.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        if value not in fresh:
            call_id = new_call_id()
            fresh[value] = call_id.ljust(len(value), "x") if len(value) > checks.MAX_CALL_ID_LENGTH else call_id
        container[key] = fresh[value]


# --- the project's rules as schemathesis checks ----------------------------------------------

# Every rule reads the same answer: parse it once (schemathesis runs a response's checks in a row,
# in the thread that sent the case; the pipeline sends several cases at once, hence one per thread).
_last_answer = threading.local()


def _answer(response: Any, case: Any) -> tuple[dict[str, Any] | None, Any]:
    """The parameters the push carried (None for another operation, or when unreadable) and the answer's body."""
    if getattr(_last_answer, "response", None) is not response:
        content_type = (response.headers.get("content-type") or [None])[0]
        params = sent_params(response.request) if case.operation.path == PUSH_PATH else None
        _last_answer.parsed = (params, checks.decode_answer(content_type, response.content))
        _last_answer.response = response
    return _last_answer.parsed


def _register(rule: checks.Check) -> None:
    def check(ctx: Any, response: Any, case: Any) -> None:
        if not any(case.operation.schema.config is schema.config for schema in (examples_schema, fuzz_schema)):
            return  # registered for the whole process: leave other schemathesis tests alone
        if case.method.upper() != case.operation.method.upper():
            # The coverage phase's unrouted methods: Zammad's catch-all route answers GET, PUT,
            # DELETE and OPTIONS with a JSON 404, PATCH gets Rails' HTML 404 page. That is the
            # web stack, not the CTI contract (a PBX only POSTs).
            return
        params, body = _answer(response, case)
        if case.operation.path != PUSH_PATH:
            # The caller log: a real Zammad guards it with its own login, whose errors are not the CTI texts.
            if rule is checks.answers_are_json:
                rule({}, {}, response.status_code, body)
            return
        if params is None and rule not in checks.ANSWER_CHECKS:
            return
        if rule is checks.fresh_call_id_is_no_duplicate and not str(call_id_of(params or {})).startswith(CALL_ID_PREFIX):
            return  # not a callId this suite made fresh (e.g. a JSON null a form sends as "null")
        context = current_context()
        rule(context.config.cti_config, params or {}, response.status_code, body, zammad=context.profile)
        return

    check.__name__ = check.__qualname__ = rule.__name__
    check.__doc__ = rule.__doc__
    schemathesis.check(check)


for _rule in (*checks.ALL_CHECKS, checks.fresh_call_id_is_no_duplicate):  # every callId here is fresh
    _register(_rule)


# --- the tests -------------------------------------------------------------------------------


class TokenSession(requests.Session):
    """Puts the real token into the endpoint URL as the request leaves, and nowhere else.

    The cases carry the masked endpoint (``.../api/v1/cti/***``), so nothing
    that prints or stores a case (schemathesis' curl commands and reports,
    pytest's tracebacks, Hypothesis' verbose output) can show the token.
    """

    def __init__(self, target: Target) -> None:
        super().__init__()
        # A client that reads Zammad's errors asks for JSON: without it Zammad's error handler (and
        # Rails, for a request Rack refuses) answer with an HTML page.
        self.headers["Accept"] = "application/json"
        self._prefix = target.endpoint_url_with("")  # .../api/v1/cti/
        self._token = target.token

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if url.startswith(self._prefix):
            segment, tail = re.match(r"([^/?#]*)(.*)", url[len(self._prefix):], re.DOTALL).groups()
            if unquote(segment) == MASK:  # "***", or "%2A%2A%2A" as some encodings send it
                request.url = self._prefix + self._token + tail
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def sessions() -> Iterator[SessionPerThread]:
    context = current_context()
    held = SessionPerThread(lambda: target_session(context.slots, TokenSession(context.target)))
    yield held
    held.close()


@pytest.fixture(scope="module")
def http(sessions: SessionPerThread) -> requests.Session:
    return sessions.get()


@pytest.fixture(scope="module", autouse=True)
def _working_integration() -> None:
    context = current_context()
    refusal = checks.integration_refusal(context.config.integration, context.config.cti_config, context.profile)
    if refusal:
        pytest.skip(f"the target's configuration says {refusal}")


def call_and_validate(case: Any, session: requests.Session) -> None:
    """Send the case and run every enabled check; the token is masked in failures.

    A failure says what makes it distinct (:data:`pipeline.DISTINCT_AS`: the
    schemathesis failures it holds), so that the pipeline reports one case
    per distinct failure, as Hypothesis did.
    """
    context = current_context()
    target = context.target
    try:
        case.call_and_validate(base_url=target.base_url, session=session, timeout=context.timeout)
    except (FailureGroup, AssertionError) as exc:
        # A plain AssertionError reads better than the exception group; mask once more, to be sure.
        failure = AssertionError(target.mask(str(exc)).replace(_ENCODED_MASK, MASK))
        found = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
        # "ST901 Custom check failed: `dial_follows_routing_table`": the code and title name the check.
        setattr(failure, pipeline.DISTINCT_AS,
                tuple(sorted({f"{getattr(f, 'code', type(f).__name__)} {getattr(f, 'title', '')}" for f in found})))
        raise failure from None
    except requests.RequestException as exc:
        # requests puts the full URL, token included, into its messages.
        raise AssertionError(f"no answer within {context.timeout:g}s (--timeout) or no connection: "
                             f"{type(exc).__name__}: {target.mask(str(exc))}\n  request:  {case.method} "
                             f"{target.masked_url}") from None


def send_case(case: Any, sessions: SessionPerThread) -> None:
    """Give the case fresh callIds now (in the order drawn), then hand it to the pipeline.

    The body and query are copied first: Hypothesis may hand the same dict to
    two cases, and one still waiting to be sent must keep the callId it got.
    The copy is the same value, so schemathesis is not told of an edit (its
    ``__setattr__`` would re-classify the case); it reads the callIds
    rewritten in place as it did before.
    """
    for name in ("body", "query"):
        object.__setattr__(case, name, copy.deepcopy(getattr(case, name)))
    rewrite_call_ids(case.body)
    rewrite_call_ids(case.query)
    pipeline.submit(describe_case(case), lambda: call_and_validate(case, sessions.get()))


def describe_case(case: Any) -> str:
    """``coverage phase: Missing `callId` at body``: the phase and what schemathesis made the case for."""
    phase = getattr(getattr(case, "meta", None), "phase", None)
    if phase is None:
        return f"{case.method} {case.operation.path}"
    description = getattr(phase.data, "description", None)
    return f"{phase.name} phase" + (f": {description}" if description else "") + f" ({case.method})"


@pytest.mark.contract_examples
@examples_schema.parametrize()
@pipeline.pipelined
def test_examples(case: Any, sessions: SessionPerThread) -> None:
    """Every named example of openapi.yaml, in each media type that declares it."""
    send_case(case, sessions)


@pytest.mark.contract_fuzz
@fuzz_schema.parametrize()
@pipeline.pipelined
def test_coverage_and_fuzzing(case: Any, sessions: SessionPerThread) -> None:
    """schemathesis' deterministic boundary and negative cases, then generated ones, --concurrency at a time."""
    send_case(case, sessions)


# --- the token check ---------------------------------------------------------------------------

# How a wrong token is spelled, derived from the real one so that near misses are covered (a
# target that compares a prefix, or ignores case, fails), and how a failure shows it: a near miss
# printed in full would give the token away.
WRONG_TOKENS = {
    "unrelated": (lambda token: "not-the-cti-token", "not-the-cti-token"),
    "token-plus-suffix": (lambda token: token + "x", MASK + "x"),
    "token-minus-last-char": (lambda token: token[:-1] or "x", f"{MASK}(without-its-last-character)"),
    "token-case-swapped": (lambda token: token.swapcase() if token.swapcase() != token else token + "X",
                           f"{MASK}(case-swapped)"),
}


@pytest.mark.contract_examples
@pytest.mark.parametrize(("kind", "encoding"), list(zip(WRONG_TOKENS, ENCODINGS, strict=False)))
def test_wrong_token_is_refused(kind: str, encoding: str, http: requests.Session) -> None:
    """Zammad checks the token before anything else in the event: 401 and its text, no dial answer."""
    target = current_context().target
    make_token, shown = WRONG_TOKENS[kind]
    token = make_token(target.token)
    params = {"event": "newCall", "from": "493023125741", "to": "498912345678", "direction": "out",
              "callId": new_call_id(), "user": "Christopher Miller"}
    response = http.post(target.endpoint_url_with(token), timeout=current_context().timeout,
                         **request_kwargs(params, encoding))
    body = checks.decode_answer(response.headers.get("Content-Type"), response.content)
    context = current_context()
    expected = checks.expected_error("invalid-token", context.profile)
    try:
        if (response.status_code, body) != (expected["status"], expected["body"]):
            raise checks.RuleViolation("wrong token", "Zammad refuses a wrong token with 401",
                                       expected, response.status_code, body)
        for rule in checks.ANSWER_CHECKS:
            rule(context.config.cti_config, {}, response.status_code, body, zammad=context.profile)
    except checks.RuleViolation as violation:
        raise contract_failure(
            scenario=f"wrong token ({kind}): {violation.rule}", problem=violation.problem, target=target,
            params=params, encoding=encoding, expected=violation.expected,
            actual_status=response.status_code, actual_body=body, token=shown,
        ) from None
