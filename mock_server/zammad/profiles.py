"""Zammad versions as data: what each release answers, read from ``profiles/<name>.json``.

The rules (order of checks, life cycle, parsing) are the same in every
version this project covers; what differs between releases is the wording
and shape of the answers. A profile maps each answer's case code (the
``code`` of a :class:`~.errors.CtiError`) to its status and body:

- ``error``: the text; ``{column}`` is filled in from the error;
- ``error_human``: true when Zammad's error handler humanised the message
  (the body then carries ``error_human`` with the same text);
- ``error_id``: true for Zammad's generic ``Error ID xxxxxxxx`` text;
- ``handler``: true when Zammad's error handler answers (not the
  controller): its format follows the request's ``Accept`` header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import CtiError, error_id_message

DEFAULT_PROFILE = "current"
_FOLDER = Path(__file__).resolve().parent / "profiles"


class UnknownProfile(ValueError):
    """A ``zammad`` profile name that no file in ``profiles/`` answers to."""


@dataclass(frozen=True)
class Reply:
    """An error answer as one Zammad version gives it."""

    status: int
    body: dict[str, Any]
    via_handler: bool  # True: Zammad's error handler answered, so the format follows Accept


@dataclass(frozen=True)
class Profile:
    name: str
    releases: str
    source: str
    aliases: tuple[str, ...]
    answers: Mapping[str, Mapping[str, Any]]

    def reply(self, error: CtiError) -> Reply:
        """The status and body this version answers ``error`` with."""
        spec = self.answers.get(error.code) or self.answers["internal-error"]
        if spec.get("error_id"):
            body: dict[str, Any] = {"error": error_id_message()}
        else:
            text = spec["error"].format(**error.fields)
            body = {"error": text, "error_human": text} if spec.get("error_human") else {"error": text}
        return Reply(spec["status"], body, bool(spec.get("handler")))

    def text(self, code: str) -> str | None:
        """The fixed text of an answer (None for an Error ID)."""
        return self.answers[code].get("error")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "releases": self.releases, "source": self.source,
                "aliases": list(self.aliases), "answers": dict(self.answers)}


def profile_names() -> list[str]:
    return sorted(path.stem for path in _FOLDER.glob("*.json"))


@lru_cache(maxsize=None)
def _all() -> dict[str, Profile]:
    found: dict[str, Profile] = {}
    for path in sorted(_FOLDER.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        profile = Profile(name=data["name"], releases=data["releases"], source=data["source"],
                          aliases=tuple(data.get("aliases", ())), answers=data["answers"])
        for name in (profile.name, *profile.aliases):
            found[name] = profile
    return found


def load_profile(name: str | None = None) -> Profile:
    """The profile named ``name`` or one of its aliases (``5`` is the 2021 one); default: current."""
    wanted = DEFAULT_PROFILE if name in (None, "") else str(name)
    try:
        return _all()[wanted]
    except KeyError:
        known = ", ".join(f"{p.name} ({p.releases})" for p in {id(p): p for p in _all().values()}.values())
        raise UnknownProfile(f"unknown Zammad profile {wanted!r}; known: {known}") from None
