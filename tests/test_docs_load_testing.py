"""The documented Locust command is bounded and lets every call it started end with a hangup."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIX = json.loads((ROOT / "fixtures" / "simulator" / "default-mix.json").read_text(encoding="utf-8"))


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text)
    assert match, text
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _longest_call_seconds() -> float:
    times = {key: value for section in MIX.values() if isinstance(section, dict)
             for key, value in section.items() if key.endswith("_seconds")}
    return times["ring_seconds"][1] + max(times["talk_seconds"][1], times["voicemail_seconds"][1])


def _docs_command() -> str:
    text = (ROOT / "docs" / "load-testing.md").read_text(encoding="utf-8")
    block = text[text.index("## Locust"):]
    block = block[block.index("```sh\n") + 6:]
    return block[:block.index("```")]


def _docstring_command() -> str:
    doc = ast.get_docstring(ast.parse((ROOT / "benchmarks" / "locustfile.py").read_text(encoding="utf-8")))
    start = doc.index("locust -f")
    return doc[start:doc.index("\n\n", start)]


@pytest.mark.parametrize("command", [_docs_command(), _docstring_command()], ids=["docs", "locustfile"])
def test_documented_locust_run_is_bounded_and_ends_its_calls(command):
    argv = shlex.split(command.replace("\\\n", " "))
    options = dict(zip(argv, argv[1:], strict=False))  # pairs of neighbours: one shorter by design
    assert "--headless" in argv
    assert _seconds(options["-t"]) <= 300, "the example runs for minutes at most"
    speed = float(options["--cti-speed"])
    assert _seconds(options["--stop-timeout"]) >= _longest_call_seconds() / speed, (
        "--stop-timeout must let the longest call of the mix hang up")
