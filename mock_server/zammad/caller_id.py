"""Caller identification: Zammad's phone-number normalisation and its directory look-up."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

DEFAULT_COUNTRY_CODE = "49"

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


class Directory:
    """The contacts caller identification searches, indexed by normalised number.

    Later contacts count as more recently added, so their names come first,
    as Zammad lists the most recently created caller IDs first.
    """

    def __init__(self, contacts: Iterable[Mapping[str, Any]] = ()) -> None:
        self._names: dict[str, list[str]] = {}
        for contact in contacts:
            name = contact.get("name")
            for key, value in contact.items():
                if key == "name":
                    continue
                for number in extract_numbers(value):
                    names = self._names.setdefault(number, [])
                    if name not in names:
                        names.insert(0, name)

    def names_for(self, number: Any) -> list[str]:
        names: list[str] = []
        for normalised in extract_numbers(number):
            for name in self._names.get(normalised, ()):
                if name not in names:
                    names.append(name)
        return names

    def comment_for(self, number: Any) -> str | None:
        """The caller-log comment for ``number``: known names joined by ``,``, or None."""
        names = self.names_for(number)
        return ",".join(names) if names else None

    def preferences_for(self, number: Any) -> list[dict[str, Any]]:
        """What Zammad keeps in a log entry's ``preferences`` about an identified number."""
        return [
            {"caller_id": normalised, "level": "known", "object": "Contact", "name": name}
            for normalised in extract_numbers(number)
            for name in self._names.get(normalised, ())
        ]
