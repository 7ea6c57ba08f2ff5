"""Caller identification (Zammad's ``Cti::CallerId``): number normalisation and the directory look-up.

Zammad indexes the numbers in every string attribute of its users (level
``known``) and of the first customer article of each ticket (level
``maybe``). A look-up takes the first level with hits, one record per user
(its newest), at most 20, newest first; the comment is the users' names
joined by ``,``, prefixed ``maybe `` when only ``maybe`` records matched.
In the mock, ``contacts`` are the users and a contact's ``articles`` are the
texts of tickets that contact wrote (``app/models/cti/caller_id.rb``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

DEFAULT_COUNTRY_CODE = "49"
MAX_USERS = 20  # Cti::CallerId.lookup: .limit(20)
LEVELS = ("known", "maybe")

# Zammad finds numbers in free text as runs of 6 to 26 digits, white space,
# dashes, brackets (and '|', which its character class happens to include).
_NUMBER_RUN = re.compile(r"[\d\s\-(|)]{6,26}")
_SPACES_DASHES = re.compile(r"[\s-]")
_TRUNK_PREFIX = re.compile(r"^(00)?(\+?\d\d)\(0?(\d*)\)")  # +49(0)30 -> +4930
_NON_DIGITS = re.compile(r"\D")


def normalize_number(number: str) -> str:
    """``+49 (0)30 231-25741`` -> ``493023125741``; ``0221 4710334`` -> ``492214710334``."""
    number = _SPACES_DASHES.sub("", number)
    number = _TRUNK_PREFIX.sub(r"\1\2\3", number, count=1)
    number = _NON_DIGITS.sub("", number)
    if number.startswith("00"):
        return number[2:]
    if number.startswith("0"):
        return DEFAULT_COUNTRY_CODE + number[1:]
    return number


def extract_numbers(text: Any) -> list[str]:
    """Every phone-like run in ``text``, normalised (empty for blank or non-text)."""
    if not isinstance(text, str) or not text.strip():
        return []
    return list(_extract_cached(text))


@lru_cache(maxsize=4096)  # a PBX repeats the same few numbers: every event names both ends
def _extract_cached(text: str) -> tuple[str, ...]:
    numbers: list[str] = []
    for match in _NUMBER_RUN.finditer(text):
        number = normalize_number(match.group(0))
        if number and number not in numbers:
            numbers.append(number)
    return tuple(numbers)


@dataclass(frozen=True)
class CallerIdRecord:
    """One row of Zammad's ``cti_caller_ids``: a number, whose it is, and how sure."""

    id: int
    caller_id: str
    level: str
    user_id: int
    name: str

    def to_json(self) -> dict[str, Any]:
        # The attributes Zammad copies into a caller-log entry's preferences.
        return {"id": self.id, "caller_id": self.caller_id, "comment": None, "level": self.level,
                "object": "User" if self.level == "known" else "Ticket", "o_id": self.user_id,
                "user_id": self.user_id, "preferences": None}


@dataclass(frozen=True)
class Identification:
    comment: str | None
    records: tuple[CallerIdRecord, ...]

    def preferences(self, side: str) -> dict[str, Any]:
        """``{"from": [...]}`` or ``{"to": [...]}``; empty when nobody was found."""
        return {side: [record.to_json() for record in self.records]} if self.records else {}



NOBODY = Identification(None, ())


class Directory:
    """The users caller identification searches, indexed by normalised number.

    Contacts are users in the order they were created: a later contact's
    records have higher ids, so its name comes first, as in Zammad.
    ``first_user_id`` is the id the first contact gets (agents come before).
    """

    def __init__(self, contacts: Iterable[Mapping[str, Any]] = (), first_user_id: int = 3) -> None:
        self.users: dict[int, Mapping[str, Any]] = {}
        self._records: dict[str, list[CallerIdRecord]] = {}
        record_id = 0
        for offset, contact in enumerate(contacts):
            user_id = int(contact.get("id") or first_user_id + offset)
            self.users[user_id] = contact
            name = str(contact.get("name") or "")
            found = [("known", n) for key, value in contact.items() if key not in ("name", "articles", "id")
                     for n in extract_numbers(value)]
            found += [("maybe", n) for text in contact.get("articles") or () for n in extract_numbers(text)]
            seen: set[tuple[str, str]] = set()
            for level, number in found:
                if (level, number) in seen:
                    continue
                seen.add((level, number))
                record_id += 1
                self._records.setdefault(number, []).append(CallerIdRecord(record_id, number, level, user_id, name))

    def identify(self, number: Any) -> Identification:
        """Zammad's ``get_comment_preferences``: who ``number`` is, as the caller log shows it."""
        numbers = extract_numbers(number)
        if not numbers:
            return NOBODY
        for level in LEVELS:
            newest_per_user: dict[int, CallerIdRecord] = {}
            for normalised in numbers:
                for record in self._records.get(normalised, ()):
                    current = newest_per_user.get(record.user_id)
                    if record.level == level and (current is None or record.id > current.id):
                        newest_per_user[record.user_id] = record
            if newest_per_user:
                records = sorted(newest_per_user.values(), key=lambda r: r.id, reverse=True)[:MAX_USERS]
                comment = ",".join(record.name for record in records)
                return Identification(comment if level == "known" else f"maybe {comment}", tuple(records))
        return NOBODY

    def comment_for(self, number: Any) -> str | None:
        return self.identify(number).comment

