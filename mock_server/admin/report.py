"""The report: what a PBX sent the mock, call by call, and what was wrong with it.

``zammad-cti serve --journal PATH`` keeps every request, its answer and its
findings in a SQLite file; this module reads that file (while the mock runs
or after it stopped) and builds one report from it:

- one section per call (grouped by ``callId``, in order of first appearance):
  direction and numbers as the PBX sent them, every event with the answer it
  got, the call's final caller-log entry, and the call's findings;
- the requests that carried no ``callId`` (malformed bodies, for instance);
- the calls that never ended (``call-not-ended``, computed now from the
  caller log with ``stale_after``);
- a summary by finding code and by severity, and a verdict.

:func:`build_report` returns a plain dict (the ``json`` format, documented in
``docs/report.md``); :func:`render` turns it into ``text``, ``json`` or
``junit``. The token never enters the report: the journal keeps the path
masked and the ``token`` parameter replaced by ``***``.

Errors: :class:`ReportError` for a journal that is missing or not a journal,
and for a ``--since`` it cannot read.
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..db import JournalFile, JournalFileError
from ..zammad.call_log import CallLog
from ..zammad.calls import rails_time
from .findings import CODES, ERROR, INFO, WARNING, summarize, unfinished_call_findings, with_sequence_findings
from .journal import Journal

REPORT_VERSION = 1
DEFAULT_STALE_AFTER = 600.0
FORMATS = ("text", "json", "junit")
NO_CALL_ID = "requests without a callId"
SEVERITIES = (ERROR, WARNING, INFO)


class ReportError(Exception):
    """The report cannot be built: no journal at the path, not a journal, or an unreadable ``--since``."""


# --since ---------------------------------------------------------------------

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``2026-11-25T10:00:00Z`` (ISO 8601; no zone means UTC) or ``15m``/``2h``/``1d`` before ``now``."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value.lower())
    if relative:
        amount, unit = relative.groups()
        return (now or datetime.now(timezone.utc)) - timedelta(seconds=float(amount) * _UNIT_SECONDS[unit])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(f"{text!r} is neither an ISO 8601 time (2026-11-25T10:00:00Z) nor a relative one "
                          "(90s, 15m, 2h, 1d, 1w)") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# Building ----------------------------------------------------------------------

def build_report(journal_path: str | Path, *, since: datetime | None = None,
                 stale_after: float = DEFAULT_STALE_AFTER, now: datetime | None = None) -> dict[str, Any]:
    """The report of the journal at ``journal_path``, as the documented JSON structure."""
    path = _existing_journal(journal_path)
    now = now or datetime.now(timezone.utc)
    since_text = rails_time(since) if since is not None else None
    call_log, journal = CallLog(max_entries=2**62), Journal(limit=2**62)
    try:
        file = JournalFile(path)
        try:
            file.load_into(call_log, journal)
        finally:
            file.close()
    except JournalFileError as exc:
        raise ReportError(str(exc)) from None
    # Judged on the whole journal: a second hangup's first may be older than --since.
    entries = [e for e in with_sequence_findings(journal.entries())
               if since_text is None or e["time"] >= since_text]
    overdue = {str(e["call_id"]): e for e in call_log.unfinished(now - timedelta(seconds=stale_after))}
    grouped: dict[str, list[dict[str, Any]]] = {}
    loose: list[dict[str, Any]] = []
    for entry in entries:
        if entry.get("call_id") is None:
            loose.append(entry)
        else:
            grouped.setdefault(str(entry["call_id"]), []).append(entry)
    calls = [_call(call_id, events, call_log.get(call_id), overdue.get(call_id), stale_after)
             for call_id, events in grouped.items()]

    without_call_id = _group(loose, _request_findings(loose))
    unfinished = [_unfinished(call) for call in calls if call["caller_log"] is not None
                  and any(f["code"] == "call-not-ended" for f in call["findings"])]
    every_finding = [f for call in calls for f in call["findings"]] + without_call_id["findings"]
    summary = summarize(every_finding)
    summary = {
        "calls": len(calls),
        "requests": len(entries),
        "requests_without_call_id": len(loose),
        "unfinished_calls": len(unfinished),
        "by_severity": summary["by_severity"],
        "by_code": summary["by_code"],
    }
    summary["passed"] = summary["by_severity"][ERROR] == 0
    summary["verdict"] = verdict(summary)
    return {
        "report_version": REPORT_VERSION,
        "generated_at": rails_time(now),
        "journal": str(path),
        "since": since_text,
        "stale_after": stale_after,
        "summary": summary,
        "calls": calls,
        "requests_without_call_id": without_call_id,
        "unfinished_calls": unfinished,
    }


def _existing_journal(journal_path: str | Path) -> Path:
    if str(journal_path) == ":memory:":
        raise ReportError("':memory:' keeps nothing to report on: give the file that "
                          "'zammad-cti serve --journal PATH' wrote")
    path = Path(journal_path).expanduser()
    if not path.is_file():
        raise ReportError(f"no journal at {path}: run 'zammad-cti serve --journal {path}' and let the PBX "
                          "send its calls first, or point --journal at the file serve wrote")
    return path


def _call(call_id: str, entries: list[dict[str, Any]], caller_log: dict[str, Any] | None,
          overdue: dict[str, Any] | None, stale_after: float) -> dict[str, Any]:
    findings = _request_findings(entries)
    if overdue is not None:
        findings += [_finding(f) for f in unfinished_call_findings([overdue], stale_after)]
    sent = next((e["params"] for e in entries if e.get("event") == "newCall" and e.get("params")), None) \
        or next((e["params"] for e in entries if (e.get("params") or {}).get("direction")), {})
    group = _group(entries, findings)
    events_and_findings = {key: group.pop(key) for key in ("events", "findings")}
    return {
        "call_id": call_id,
        "direction": sent.get("direction", (caller_log or {}).get("direction")),
        "from": sent.get("from", (caller_log or {}).get("from")),
        "to": sent.get("to", (caller_log or {}).get("to")),
        **group,
        "caller_log": caller_log,
        **events_and_findings,
    }


def _group(entries: list[dict[str, Any]], findings: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {severity: 0 for severity in SEVERITIES}
    for finding in findings:
        counts[finding["severity"]] = counts.get(finding["severity"], 0) + 1
    return {
        "passed": counts[ERROR] == 0,
        "counts": counts,
        "first_seen": entries[0]["time"] if entries else None,
        "last_seen": entries[-1]["time"] if entries else None,
        "events": [_event(e) for e in entries],
        "findings": findings,
    }


def _event(entry: dict[str, Any]) -> dict[str, Any]:
    fault = entry.get("fault")
    return {
        "request_id": entry["id"],
        "time": entry["time"],
        "event": entry.get("event"),
        "method": entry.get("method"),
        "path": entry.get("path"),
        "encoding": entry.get("encoding"),
        "params": entry.get("params"),
        "token_valid": entry.get("token_valid"),
        "status": entry.get("status"),
        "answer": entry.get("answer"),
        "reason": entry.get("reason"),
        "duration_ms": entry.get("duration_ms"),
        "fault": {"id": fault.get("id"), "kind": fault.get("kind")} if fault else None,
        "findings": [f["code"] for f in entry.get("findings", [])],
    }


def _request_findings(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_finding(f, entry) for entry in entries for f in entry.get("findings", [])]


def _finding(finding: dict[str, Any], entry: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "code": finding["code"],
        "severity": finding["severity"],
        "message": finding["message"],
        "field": finding.get("field"),
        "request_id": entry["id"] if entry else None,
        "event": entry.get("event") if entry else None,
        "time": entry["time"] if entry else finding.get("time"),
    }


def _unfinished(call: dict[str, Any]) -> dict[str, Any]:
    log = call["caller_log"]
    return {
        "call_id": call["call_id"],
        "state": "ringing" if log["state"] == "newCall" else "answered",
        "initialized_at": log["initialized_at"],
        "direction": call["direction"],
        "from": call["from"],
        "to": call["to"],
    }


def verdict(summary: dict[str, Any]) -> str:
    """``FAIL: 3 errors, 1 warning in 12 calls (40 requests)``; infos are named only when there are some."""
    by_severity = summary["by_severity"]
    parts = [_plural(by_severity[ERROR], "error"), _plural(by_severity[WARNING], "warning")]
    if by_severity[INFO]:
        parts.append(_plural(by_severity[INFO], "info"))
    outcome = "PASS" if by_severity[ERROR] == 0 else "FAIL"
    return (f"{outcome}: {', '.join(parts)} in {_plural(summary['calls'], 'call')} "
            f"({_plural(summary['requests'], 'request')})")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# Rendering ---------------------------------------------------------------------

def render(report: dict[str, Any], fmt: str) -> str:
    """The report as ``text``, ``json`` or ``junit``; always ends with a newline, always encodable as UTF-8."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ReportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    text = renderer(report)
    # A PBX may send a lone surrogate ("\ud800" in JSON): JSON keeps it as its escape, text shows U+FFFD.
    if fmt == "json":
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _cell(value: Any) -> str:
    """Any JSON value a PBX sent, as one line of text: strings as they are, the rest as JSON."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"


# text

WIDTH = 100
_ANSWER_WIDTH = 50


def render_text(report: dict[str, Any]) -> str:
    summary = report["summary"]
    window = f"requests since {report['since']}" if report["since"] else "all requests"
    lines = [
        f"zammad-cti report of {report['journal']}",
        (f"{window}; a call without hangup is reported after {_seconds(report['stale_after'])}; "
         f"generated {report['generated_at']}"),
        "",
    ]
    if not summary["requests"]:
        lines += ["No requests in the journal" + (" since then." if report["since"] else "."), ""]
    for call in report["calls"]:
        lines += _text_call(call)
    loose = report["requests_without_call_id"]
    if loose["events"]:
        lines += [f"{NO_CALL_ID[0].upper()}{NO_CALL_ID[1:]} ({len(loose['events'])}): {_tally(loose['counts'])}"]
        lines += _text_events(loose["events"]) + _text_findings(loose["findings"]) + [""]
    if report["unfinished_calls"]:
        lines.append(f"Calls that never ended ({len(report['unfinished_calls'])}, no hangup after "
                     f"{_seconds(report['stale_after'])})")
        lines += _columns([[u["call_id"], f"{u['state']} since {u['initialized_at']}",
                            _route(u["direction"], u["from"], u["to"])]
                           for u in report["unfinished_calls"]], indent=2)
        lines.append("")
    lines += _text_summary(summary)
    return "\n".join(lines) + "\n"


def _text_call(call: dict[str, Any]) -> list[str]:
    route = _route(call["direction"], call["from"], call["to"])
    lines = [f"Call {call['call_id']}  {route}  {_tally(call['counts'])}"]
    lines += _text_events(call["events"])
    lines.append("  caller log: " + _caller_log_line(call["caller_log"]))
    lines += _text_findings(call["findings"])
    return lines + [""]


def _text_events(events: list[dict[str, Any]]) -> list[str]:
    rows = [[f"#{e['request_id']}", e["time"], _cell(e["event"]),
             "---" if e["status"] is None else str(e["status"]), _answer_text(e),
             ", ".join(e["findings"])] for e in events]
    return _columns(rows, indent=2)


def _answer_text(event: dict[str, Any]) -> str:
    if event["status"] is None:
        return "(no answer: " + (event.get("reason") or "connection dropped") + ")"
    text = json.dumps(event["answer"], ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= _ANSWER_WIDTH else text[:_ANSWER_WIDTH - 3] + "..."


def _text_findings(findings: list[dict[str, Any]]) -> list[str]:
    if not findings:
        return []
    code_width = max(len(f["code"]) for f in findings)
    lines = []
    for f in findings:
        head = f"  {f['severity']:<7}  {f['code']:<{code_width}}  "
        where = _where(f) + ": " if f["request_id"] is not None else ""
        lines += textwrap.wrap(where + f["message"], width=WIDTH, initial_indent=head,
                               subsequent_indent=" " * len(head)) or [head.rstrip()]
    return lines


def _where(finding: dict[str, Any]) -> str:
    return f"#{finding['request_id']}" + (f" {_cell(finding['event'])}" if finding["event"] else "")


def _caller_log_line(log: dict[str, Any] | None) -> str:
    if log is None:
        return "no entry (Zammad created none for this callId)"
    parts = [log["state"], "done" if log["done"] else "not done"]
    if log.get("duration_waiting_time") is not None:
        parts.append(f"waited {log['duration_waiting_time']} s")
    if log.get("duration_talking_time") is not None:
        parts.append(f"talked {log['duration_talking_time']} s")
    if log.get("comment"):
        parts.append(f"cause {log['comment']}")
    for key in ("from_comment", "to_comment"):
        if log.get(key):
            parts.append(f"{key} {log[key]!r}")
    return ", ".join(parts)


def _text_summary(summary: dict[str, Any]) -> list[str]:
    lines = ["Summary"]
    if summary["by_code"]:
        rows = [["code", "severity", "count", "meaning"]]
        ordered = sorted(summary["by_code"].items(),
                         key=lambda item: (SEVERITIES.index(_severity(item[0])), item[0]))
        rows += [[code, _severity(code), str(count), CODES.get(code, ("", ""))[1]] for code, count in ordered]
        lines += _columns(rows, indent=2, right={2})
    else:
        lines.append("  no findings")
    lines += [f"  by severity: {_tally(summary['by_severity'], always=True)}",
              (f"  {_plural(summary['calls'], 'call')}, {_plural(summary['requests'], 'request')}, "
               f"{summary['requests_without_call_id']} without a callId, "
               f"{summary['unfinished_calls']} never ended"),
              "", summary["verdict"]]
    return lines


def _severity(code: str) -> str:
    return CODES.get(code, (ERROR, ""))[0]


def _tally(counts: dict[str, int], always: bool = False) -> str:
    parts = [_plural(counts.get(s, 0), s) for s in SEVERITIES if always or counts.get(s, 0)]
    return ", ".join(parts) if parts else "ok"


def _route(direction: Any, from_: Any, to: Any) -> str:
    return f"{direction if direction is not None else '?'}  {_number(from_)} -> {_number(to)}"


def _number(value: Any) -> str:
    return "?" if value in (None, "") else str(value)


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _columns(rows: list[list[str]], indent: int = 0, right: frozenset[int] | set[int] = frozenset()) -> list[str]:
    """Rows padded to aligned columns; the last column is left as it is."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append((" " * indent + "  ".join(cells + [row[-1]])).rstrip())
    return lines


# junit

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(report: dict[str, Any]) -> str:
    """One ``testsuite``, one ``testcase`` per call (and one for the requests without a callId).

    A testcase with error-level findings gets one ``failure`` listing them;
    its events, caller log, warnings and infos go to ``system-out``.
    """
    cases = [(f"call {call['call_id']}", "zammad-cti.calls", call) for call in report["calls"]]
    loose = report["requests_without_call_id"]
    if loose["events"]:
        cases.append((NO_CALL_ID, "zammad-cti.requests", {**loose, "caller_log": None, "call_id": None}))
    failures = sum(1 for _, _, group in cases if not group["passed"])
    total_time = sum(_group_seconds(group) for _, _, group in cases)
    attributes = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": "0",
                  "time": f"{total_time:.3f}"}
    root = ET.Element("testsuites", {"name": "zammad-cti report", **attributes})
    suite = ET.SubElement(root, "testsuite", {"name": "zammad-cti report", **attributes,
                                              "timestamp": report["generated_at"].rstrip("Z")})
    properties = ET.SubElement(suite, "properties")
    for name in ("journal", "since", "stale_after", "generated_at"):
        ET.SubElement(properties, "property", {"name": name, "value": _xml(report[name])})
    ET.SubElement(properties, "property", {"name": "verdict", "value": report["summary"]["verdict"]})
    for name, classname, group in cases:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": _xml(name),
                                                 "time": f"{_group_seconds(group):.3f}"})
        errors = [f for f in group["findings"] if f["severity"] == ERROR]
        if errors:
            codes = sorted({f["code"] for f in errors})
            failure = ET.SubElement(case, "failure", {"type": codes[0],
                                                      "message": f"{_plural(len(errors), 'error')}: {', '.join(codes)}"})
            failure.text = _xml("\n".join(_finding_line(f) for f in errors))
        out = _junit_out(group)
        if out:
            ET.SubElement(case, "system-out").text = _xml(out)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _group_seconds(group: dict[str, Any]) -> float:
    return sum(e.get("duration_ms") or 0 for e in group["events"]) / 1000


def _finding_line(finding: dict[str, Any]) -> str:
    where = f" ({_where(finding)}, {finding['time']})" if finding["request_id"] is not None else ""
    return f"{finding['severity']} {finding['code']}{where}: {finding['message']}"


def _junit_out(group: dict[str, Any]) -> str:
    lines = ["events:"] + _text_events(group["events"])
    if group.get("call_id") is not None:
        lines.append("caller log: " + _caller_log_line(group["caller_log"]))
    others = [f for f in group["findings"] if f["severity"] != ERROR]
    if others:
        lines += ["findings:"] + ["  " + _finding_line(f) for f in others]
    return "\n".join(lines)


def _xml(value: Any) -> str:
    """Text XML 1.0 can carry: control characters a PBX sent become U+FFFD."""
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
}
