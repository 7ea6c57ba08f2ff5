"""The failures Zammad answers with an error, by case; their texts live in the version profiles."""

from __future__ import annotations

import secrets
from typing import Any


def error_id_message() -> str:
    """Zammad's generic error text: 8 random URL-safe base64 characters, new each time."""
    # secrets.token_urlsafe(6) encodes 6 random bytes as exactly 8 characters,
    # the same as Ruby's SecureRandom.urlsafe_base64(6) that Zammad uses.
    return f"Error ID {secrets.token_urlsafe(6)}: Please contact your administrator."


class CtiError(Exception):
    """A request Zammad refuses, named by ``code`` (``duplicate-call``, ``unknown-call``, ...).

    The profile of the Zammad version turns the code into a status and body
    (:meth:`.profiles.Profile.reply`); ``detail`` says, for the mock's
    journal, why Zammad answered this way (the PBX never sees it); ``fields``
    fill the profile's text (``column`` for a missing NOT NULL column).
    """

    def __init__(self, code: str, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.fields = fields
