"""The pure Zammad rules of mock_server.zammad, without HTTP.

Each test names the rule of zammad-cti-reference.md it pins.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from zammad_answers import ERROR_ID

from mock_server.zammad import call_log
from mock_server.zammad.caller_id import Directory, extract_numbers, normalize_number
from mock_server.zammad.config import (
    ConfigError,
    MockConfig,
    load_config,
    parse_config_text,
)
from mock_server.zammad.endpoint import push
from mock_server.zammad.errors import CtiError
from mock_server.zammad.params import fold_pairs, merge_params
from mock_server.zammad.profiles import load_profile
from mock_server.zammad.routing import blocked_entry, outbound_route

# --------------------------------------------------------------------------- Rails folding


def test_fold_user_brackets_collect_an_array():
    folded = fold_pairs([("user[]", "A"), ("user[]", "B")])
    assert folded.values == {"user": ["A", "B"]}
    assert folded.repeated_keys == []


def test_fold_plain_repeated_key_keeps_last_and_is_reported():
    folded = fold_pairs([("user", "A"), ("from", "1"), ("user", "B")])
    assert folded.values == {"user": "B", "from": "1"}
    assert folded.repeated_keys == ["user"]


def test_fold_single_keys_are_not_reported_as_repeated():
    assert fold_pairs([("user", "A"), ("from", "1")]).repeated_keys == []


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("a[b]", "c")], {"a": {"b": "c"}}),
        ([("a[b][c]", "d")], {"a": {"b": {"c": "d"}}}),
        ([("a[b]", "1"), ("a[c]", "2")], {"a": {"b": "1", "c": "2"}}),
        ([("a[b][]", "1"), ("a[b][]", "2")], {"a": {"b": ["1", "2"]}}),
    ],
    ids=["one-level", "two-levels", "siblings", "nested-array"],
)
def test_fold_brackets_nest(pairs, expected):
    assert fold_pairs(pairs).values == expected


def test_fold_malformed_brackets_stay_verbatim():
    assert fold_pairs([("a[b", "1")]).values == {"a[b": "1"}


def test_merge_query_wins_over_body():
    # Rails: request_parameters.merge(query_parameters)
    merged = merge_params({"from": "query", "to": "query-to"}, {"from": "body", "cause": "busy"})
    assert merged == {"from": "query", "to": "query-to", "cause": "busy"}


# --------------------------------------------------------------------------- routing and block list


@pytest.fixture
def cti(documented) -> dict[str, Any]:
    return documented["cti_config"]


@pytest.mark.parametrize(
    ("to", "caller_id", "dest"),
    [
        ("498912345", "498999998145", "4989*"),
        ("493023125741", "493023125877", "4930*"),
        ("492214710334", "496990009111", None),
        ("4930", "496990009111", None),
        ("4989", "496990009111", None),
        ("04989123", "496990009111", None),
        ("+498912345", "496990009111", None),
    ],
    ids=["munich", "berlin", "default", "4930-alone-needs-one-more-char", "4989-alone",
         "anchored-at-start", "plus-prefix-not-stripped"],
)
def test_outbound_route_documented_table(cti, to, caller_id, dest):
    chosen, row = outbound_route(cti, to)
    assert chosen == caller_id
    assert (row or {}).get("dest") == dest


def test_route_anchored_at_end():
    cti = {"outbound": {"routing_table": [{"dest": "4989", "caller_id": "X"}], "default_caller_id": "D"}}
    assert outbound_route(cti, "4989") == ("X", {"dest": "4989", "caller_id": "X"})
    assert outbound_route(cti, "49891") == ("D", None)


def test_route_star_in_the_middle_needs_a_character():
    cti = {"outbound": {"routing_table": [{"dest": "49*1", "caller_id": "X"}]}}
    assert outbound_route(cti, "49771")[0] == "X"
    assert outbound_route(cti, "491") is None


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ([{"dest": "49*", "caller_id": "A"}, {"dest": "4989*", "caller_id": "B"}], "A"),
        ([{"dest": "4989*", "caller_id": "B"}, {"dest": "49*", "caller_id": "A"}], "B"),
    ],
    ids=["wide-row-first", "narrow-row-first"],
)
def test_route_first_matching_row_wins(table, expected):
    cti = {"outbound": {"routing_table": table, "default_caller_id": "D"}}
    assert outbound_route(cti, "498912345")[0] == expected


@pytest.mark.parametrize("to", [None, "", "   "], ids=["missing", "empty", "spaces"])
def test_route_none_for_blank_to(cti, to):
    assert outbound_route(cti, to) is None


@pytest.mark.parametrize("default", [None, ""], ids=["no-default", "empty-default"])
def test_route_none_without_match_and_default(default):
    cti = {"outbound": {"routing_table": [{"dest": "4989*", "caller_id": "X"}], "default_caller_id": default}}
    assert outbound_route(cti, "492214710334") is None


def test_block_list_exact_match(cti):
    assert blocked_entry(cti, "491715000000") == {"caller_id": "491715000000", "note": "spam"}


@pytest.mark.parametrize(
    "from_number",
    ["+491715000000", "00491715000000", "0171 5000000", "4917150000001", " 491715000000", None],
    ids=["plus", "double-zero", "national", "longer", "leading-space", "missing"],
)
def test_block_list_is_not_normalised(cti, from_number):
    assert blocked_entry(cti, from_number) is None


# --------------------------------------------------------------------------- caller identification


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+49 (0)30 231-25741", "493023125741"),
        ("0221 4710334", "492214710334"),
        ("0049 89 99998100", "498999998100"),
        ("+49 30 23125741", "493023125741"),
        ("493023125741", "493023125741"),
        ("(0)30 231 25741", "493023125741"),
    ],
    ids=["trunk-prefix", "national", "double-zero", "plus", "already-normal", "bracketed-zero"],
)
def test_normalize_number(raw, normalised):
    assert normalize_number(raw) == normalised


def test_extract_numbers_from_free_text():
    text = "Call me at +49 30 23125741 or on my mobile 0171-5551234, ext 1234."
    assert extract_numbers(text) == ["493023125741", "491715551234"]


@pytest.mark.parametrize("value", [None, "", "   ", 4930231, "no digits here", "12345"],
                         ids=["none", "empty", "blank", "not-text", "no-digits", "too-short"])
def test_extract_numbers_finds_nothing(value):
    assert extract_numbers(value) == []


def test_directory_comment_most_recent_first():
    directory = Directory([
        {"name": "Anna Alt", "phone": "030 1234567"},
        {"name": "Bernd Neu", "mobile": "+49 30 1234567"},
    ])
    assert directory.comment_for("4930 1234567") == "Bernd Neu,Anna Alt"


def test_directory_comment_dedups_names():
    directory = Directory([{"name": "Anna Alt", "phone": "030 1234567", "mobile": "+49 (0)30 1234567"}])
    assert directory.comment_for("49301234567") == "Anna Alt"


def test_directory_unknown_number_has_no_comment(documented):
    directory = Directory(documented["contacts"])
    assert directory.comment_for("491111111111") is None
    assert directory.comment_for("anonymous") is None


@pytest.mark.parametrize(
    ("number", "comment"),
    [
        ("493023125741", "Christopher Miller"),
        ("02214710334", "Emma Taylor"),
        ("491715551234", "Emma Taylor"),
        ("498999998101", "Luca Rossi"),
    ],
    ids=["phone", "national-form", "second-field", "number-in-free-text"],
)
def test_directory_documented_contacts(documented, number, comment):
    assert Directory(documented["contacts"]).comment_for(number) == comment


# --------------------------------------------------------------------------- call log life cycle


def call(event: str, call_id: str = "c1", direction: str = "in", **extra: Any) -> dict[str, Any]:
    params = {"event": event, "from": "493023125741", "to": "492214710334", "direction": direction, "callId": call_id}
    params.update(extra)
    return params


@pytest.fixture
def directory(documented) -> Directory:
    return Directory(documented["contacts"])


@pytest.fixture
def make_log(clock):
    """The app's caller-log store (in memory), with the test's clock."""

    def factory(**kwargs: Any):
        return call_log.CallLog(clock=clock, **kwargs)

    return factory


@pytest.fixture
def log(make_log):
    return make_log()


def stamp(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_new_inbound_call(log, directory, clock):
    entry = log.process(call("newCall", user="Emma Taylor"), directory).to_json()
    assert entry == {
        "id": 1,
        "call_id": "c1",
        "direction": "in",
        "state": "newCall",
        "from": "493023125741",
        "from_comment": "Christopher Miller",
        "to": "492214710334",
        "to_comment": "Emma Taylor",
        "queue": "492214710334",
        "comment": None,
        "done": False,
        "initialized_at": stamp(clock.now),
        "start_at": None,
        "end_at": None,
        "duration_waiting_time": None,
        "duration_talking_time": None,
        "preferences": {"from": [{"id": 1, "caller_id": "493023125741", "comment": None, "level": "known",
                                  "object": "User", "o_id": 3, "user_id": 3, "preferences": None}],
                        "from_pretty": "+49 30 23125741", "to_pretty": "+49 221 4710334"},
        "created_at": stamp(clock.now),
        "updated_at": stamp(clock.now),
        "from_pretty": "+49 30 23125741",
        "to_pretty": "+49 221 4710334",
    }


def test_new_inbound_call_to_comment_falls_back_to_queue(log, directory):
    entry = log.process(call("newCall", queue="support"), directory)
    assert (entry.to_comment, entry.queue) == ("support", "support")


def test_new_inbound_call_without_user_or_queue(log, directory):
    entry = log.process(call("newCall"), directory)
    assert (entry.to_comment, entry.queue) == (None, "492214710334")


def test_new_outbound_call(log, directory):
    entry = log.process(call("newCall", direction="out", user="Christopher Miller", cause="x"), directory)
    assert entry.done is True
    assert entry.from_comment == "Christopher Miller"
    assert entry.to_comment == "Emma Taylor"
    assert entry.queue == "493023125741"
    assert entry.comment == "x"


def test_answer(log, directory, clock):
    log.process(call("newCall"), directory)
    clock.advance(5)
    entry = log.process(call("answer", user="Emma Taylor", cause="picked"), directory)
    assert entry.state == "answer"
    assert entry.start_at == clock.now
    assert entry.duration_waiting_time == 5
    assert entry.to_comment == "Emma Taylor"
    assert entry.done is True
    assert entry.comment == "picked"


def test_answer_without_user_keeps_to_comment(log, directory):
    log.process(call("newCall", user="Emma Taylor"), directory)
    assert log.process(call("answer"), directory).to_comment == "Emma Taylor"


def test_answer_after_hangup_is_ignored(log, directory, clock):
    log.process(call("newCall"), directory)
    clock.advance(2)
    log.process(call("hangup", cause="cancel"), directory)
    before = log.get("c1")
    clock.advance(2)
    assert log.process(call("answer", user="Late Agent"), directory) is None
    assert log.get("c1") == before


def test_hangup_after_answer_counts_talking_time(log, directory, clock):
    log.process(call("newCall"), directory)
    clock.advance(4)
    log.process(call("answer"), directory)
    clock.advance(30)
    entry = log.process(call("hangup", cause="normalClearing"), directory)
    assert entry.state == "hangup"
    assert entry.end_at == clock.now
    assert (entry.duration_waiting_time, entry.duration_talking_time) == (4, 30)
    assert entry.comment == "normalClearing"


def test_hangup_unanswered_counts_waiting_time(log, directory, clock):
    log.process(call("newCall"), directory)
    clock.advance(9)
    entry = log.process(call("hangup", cause="cancel"), directory)
    assert (entry.duration_waiting_time, entry.duration_talking_time) == (9, None)


def test_second_hangup_keeps_waiting_time(log, directory, clock):
    log.process(call("newCall"), directory)
    clock.advance(3)
    log.process(call("hangup"), directory)
    clock.advance(10)
    entry = log.process(call("hangup"), directory)
    assert entry.duration_waiting_time == 3
    assert entry.end_at == clock.now


def test_durations_are_differences_of_whole_epoch_seconds(log, directory, clock):
    clock.now = clock.now.replace(microsecond=900_000)
    log.process(call("newCall"), directory)
    clock.advance(0.2)  # 10:00:00.9 -> 10:00:01.1: Ruby's to_i difference is 1
    assert log.process(call("answer"), directory).duration_waiting_time == 1


@pytest.mark.parametrize(
    ("direction", "steps", "done"),
    [
        ("in", [("hangup", {"cause": "cancel"})], False),
        ("in", [("hangup", {"cause": "noAnswer"})], False),
        ("in", [("hangup", {"cause": "forwarded"})], True),
        ("in", [("answer", {}), ("hangup", {"cause": "normalClearing"})], True),
        ("in", [("answer", {"user": "voicemail"}), ("hangup", {"cause": "normalClearing"})], False),
        ("out", [("hangup", {"cause": "cancel"})], True),
        ("out", [("answer", {}), ("hangup", {"cause": "normalClearing"})], True),
    ],
    ids=["in-missed", "in-no-answer", "in-forwarded", "in-answered", "in-voicemail",
         "out-unanswered", "out-answered"],
)
def test_done_after_hangup(log, directory, direction, steps, done):
    log.process(call("newCall", direction=direction), directory)
    for event, extra in steps:
        log.process(call(event, direction=direction, **extra), directory)
    assert log.get("c1")["done"] is done


def test_duplicate_new_call(log, directory):
    log.process(call("newCall"), directory)
    with pytest.raises(CtiError) as caught:
        log.process(call("newCall"), directory)
    assert caught.value.code == "duplicate-call"
    assert len(log) == 1


@pytest.mark.parametrize("event", ["answer", "hangup"])
def test_event_for_unknown_call(log, directory, event):
    with pytest.raises(CtiError) as caught:
        log.process(call(event, call_id="nobody"), directory)
    assert caught.value.code == "unknown-call"
    assert len(log) == 0


@pytest.mark.parametrize("event", ["ringing", None, ""], ids=["unknown", "missing", "empty"])
def test_unknown_event(log, directory, event):
    with pytest.raises(CtiError) as caught:
        log.process(call(event), directory)
    assert caught.value.code == "unknown-event"


def test_error_ids_differ():
    profile = load_profile()
    bodies = [profile.reply(CtiError("unknown-call", "x")).body["error"] for _ in range(2)]
    assert all(ERROR_ID.match(text) for text in bodies)
    assert bodies[0] != bodies[1]


def test_user_array_joined(log, directory):
    entry = log.process(call("newCall", user=["Christopher Miller", "Emma Taylor"]), directory)
    assert entry.to_comment == "Christopher Miller, Emma Taylor"


def test_call_id_alias(log, directory):
    params = call("newCall")
    del params["callId"]
    params["call_id"] = "alias-1"
    log.process(params, directory)
    assert log.get("alias-1")["call_id"] == "alias-1"
    assert log.process(call("answer", call_id="alias-1"), directory).state == "answer"


def test_call_id_wins_over_call_id_alias(log, directory):
    log.process({**call("newCall", call_id="camel"), "call_id": "snake"}, directory)
    assert log.get("camel") is not None
    assert log.get("snake") is None


def test_numeric_and_string_call_ids_are_one_call(log, directory):
    log.process(call("newCall", call_id=5), directory)
    with pytest.raises(CtiError):
        log.process(call("newCall", call_id="5"), directory)


def test_newest_first_and_limited(log, directory, clock):
    for n in (1, 2, 3):
        log.process(call("newCall", call_id=f"c{n}"), directory)
        clock.advance(1)
    assert [e["call_id"] for e in log.newest(2)] == ["c3", "c2"]
    assert [e["call_id"] for e in log.newest(60)] == ["c3", "c2", "c1"]
    assert log.newest(0) == []


def test_max_entries_evicts_oldest(make_log, directory):
    log = make_log(max_entries=2)
    for n in (1, 2, 3):
        log.process(call("newCall", call_id=f"c{n}"), directory)
    assert len(log) == 2
    assert log.get("c1") is None
    assert [e["id"] for e in log.newest(10)] == [3, 2]
    with pytest.raises(CtiError) as caught:
        log.process(call("hangup", call_id="c1"), directory)
    assert caught.value.code == "unknown-call"


def test_clear_empties_the_log(log, directory):
    log.process(call("newCall", call_id="a"), directory)
    log.clear()
    assert (len(log), log.newest(10), log.get("a")) == (0, [], None)
    assert log.process(call("newCall", call_id="a"), directory).state == "newCall"


# --------------------------------------------------------------------------- configuration


def test_load_json_config(tmp_path, documented):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(documented), encoding="utf-8")
    config = load_config(path)
    assert config.token == "documented-token-3f9c2a"
    assert config.integration is True
    assert config.cti_config["outbound"]["default_caller_id"] == "496990009111"
    assert [c["name"] for c in config.contacts] == ["Christopher Miller", "Emma Taylor", "Luca Rossi"]


def test_load_yaml_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "token: yaml-token\n"
        "integration: false\n"
        "cti_config:\n"
        "  outbound:\n"
        "    routing_table:\n"
        "      - {dest: '4940*', caller_id: '494011111111'}\n"
        "  inbound: {block_caller_ids: []}\n"
        "  view_limit: '5'\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.token == "yaml-token"
    assert config.integration is False
    assert config.cti_config["outbound"]["routing_table"] == [{"dest": "4940*", "caller_id": "494011111111"}]
    assert config.view_limit == 5
    assert config.contacts == ()


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('{"token": "t"}', ["is not a valid mock configuration", "(top level): 'cti_config' is a required property"]),
        ('{"token": "t", "cti_config": {"outbound": {"routing_table": [{"caller_id": "1"}]}}}',
         ["cti_config/outbound/routing_table/0: 'dest' is a required property"]),
        ('{"token": "t", "cti_config": {}, "integration": "yes"}', ["integration: 'yes' is not of type 'boolean'"]),
        ("token: [unclosed\n", ["is neither JSON nor YAML"]),
        ("- just\n- a list\n", ["(top level):", "is not of type 'object'"]),
    ],
    ids=["missing-cti-config", "row-without-dest", "integration-not-bool", "not-parseable", "not-an-object"],
)
def test_bad_config_file_names_file_and_place(tmp_path, text, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read configuration .*missing\.json"):
        load_config(tmp_path / "missing.json")


@pytest.mark.parametrize(("raw", "limit"), [(None, 60), ("", 60), ("7", 7), (3, 3), ("lots", 60)],
                         ids=["null", "empty", "string", "int", "garbage"])
def test_view_limit(raw, limit):
    text = json.dumps({"token": "t", "cti_config": {"view_limit": raw}})
    assert parse_config_text(text).view_limit == limit


# --------------------------------------------------------------------------- endpoint: order of checks

# The texts each Zammad version answers with, written out here as literals (not read from the profiles).
TEXTS = {
    "current": {"disabled": "Feature is disabled, please contact your administrator!",
                "direction": "Invalid 'direction'!"},
    "2021": {"disabled": "Feature is disable, please contact your admin to enable it!",
             "direction": "Invalid direction!"},
}
NOT_CONFIGURED = "Feature not configured, please contact your admin!"
INVALID_TOKEN = "Invalid token, please contact your admin!"


@pytest.fixture(params=sorted(TEXTS))
def zammad(request) -> str:
    return request.param


def endpoint_config(documented, zammad: str = "", **changes) -> MockConfig:
    data = {"token": documented["token"], "cti_config": documented["cti_config"], "integration": True}
    data.update(changes)
    return MockConfig(token=data["token"], cti_config=data["cti_config"], integration=data["integration"],
                      zammad=zammad)


def check(config: MockConfig, token: str, params: dict[str, Any], make_log) -> tuple[int, dict[str, Any]]:
    answer = push(config, make_log(), Directory(), token, params)
    return answer.status, answer.body


BAD_REQUEST = {"event": "newCall", "direction": "sideways", "callId": "x"}


def test_disabled_comes_first(documented, make_log, zammad):
    config = endpoint_config(documented, zammad, integration=False, cti_config=None)
    assert check(config, "wrong", BAD_REQUEST, make_log) == (422, {"error": TEXTS[zammad]["disabled"]})


@pytest.mark.parametrize(
    "cti_change",
    [
        None,
        {},
        {"inbound": {}},
        {"inbound": None},
        {"outbound": {}},
        {"outbound": None},
    ],
    ids=["null", "empty", "blank-inbound", "null-inbound", "blank-outbound", "null-outbound"],
)
def test_not_configured_before_token(documented, cti_change, make_log):
    cti = None if cti_change is None else ({} if cti_change == {} else {**documented["cti_config"], **cti_change})
    config = endpoint_config(documented, cti_config=cti)
    assert check(config, "wrong", BAD_REQUEST, make_log) == (422, {"error": NOT_CONFIGURED})


def test_token_before_direction(documented, make_log):
    assert check(endpoint_config(documented), "wrong", BAD_REQUEST, make_log) == (401, {"error": INVALID_TOKEN})


@pytest.mark.parametrize("direction", ["sideways", None, "", "IN", "inbound"],
                         ids=["other", "missing", "empty", "upper-case", "word"])
def test_invalid_direction(documented, direction, make_log, zammad):
    params = {"event": "newCall", "callId": "x"}
    if direction is not None:
        params["direction"] = direction
    assert check(endpoint_config(documented, zammad), documented["token"], params, make_log) == (
        422, {"error": TEXTS[zammad]["direction"]})


def test_outbound_new_call_dials_and_logs_rewritten_from(documented, make_log):
    log = make_log()
    params = {"event": "newCall", "direction": "out", "from": "493023125741", "to": "498912345", "callId": "d1"}
    answer = push(endpoint_config(documented), log, Directory(), documented["token"], params)
    assert (answer.status, answer.body) == (200, {"action": "dial", "caller_id": "498999998145", "number": "498912345"})
    assert log.get("d1")["from"] == "498999998145"
    assert params["from"] == "493023125741"


@pytest.mark.parametrize(
    ("given", "matches"),
    [("documented-token-3f9c2a", True), ("documented-token-3f9c2", False), ("documented-token-3f9c2aa", False),
     ("DOCUMENTED-TOKEN-3F9C2A", False), ("", False), (None, False)],
    ids=["equal", "prefix", "longer", "case", "empty", "missing"],
)
def test_token_compare(documented, given, matches, make_log):
    params = {"event": "newCall", "direction": "in", "from": "1", "to": "2", "callId": "t"}
    status, body = check(endpoint_config(documented), given, params, make_log)
    assert (status, body) == ((200, {}) if matches else (401, {"error": INVALID_TOKEN}))
