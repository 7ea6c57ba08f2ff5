"""``from_pretty`` and ``to_pretty``: a caller-log number as Zammad shows it.

Zammad (``Cti::Log#set_pretty``) ensures a leading ``+`` and parses the
number with the ``telephone_number`` gem, a port of Google's libphonenumber:
a valid number is shown in its international format (``+49 30 23125741``),
anything else as the gem's original number, which keeps the digits only.
The ``phonenumbers`` package is the Python port of the same library.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers

_NON_DIGITS = re.compile(r"\D")


@lru_cache(maxsize=4096)  # a PBX repeats the same few numbers
def pretty_number(number: Any) -> str | None:
    if number is None:
        return None
    digits = _NON_DIGITS.sub("", str(number))
    if digits:
        try:
            parsed = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException:
            return digits
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return digits
