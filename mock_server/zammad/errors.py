"""The error answers a real Zammad gives on the CTI endpoint."""

from __future__ import annotations

import secrets

FEATURE_DISABLED = "Feature is disable, please contact your admin to enable it!"
NOT_CONFIGURED = "Feature not configured, please contact your admin!"
INVALID_TOKEN = "Invalid token, please contact your admin!"
INVALID_DIRECTION = "Invalid direction!"
ALREADY_EXISTS = "Object already exists!"


def error_id_message() -> str:
    """Zammad's generic error text: 8 random URL-safe base64 characters, new each time."""
    # secrets.token_urlsafe(6) encodes 6 random bytes as exactly 8 characters,
    # the same as Ruby's SecureRandom.urlsafe_base64(6) that Zammad uses.
    return f"Error ID {secrets.token_urlsafe(6)}: Please contact your administrator."


class CtiError(Exception):
    """An answer Zammad gives as ``{"error": message}`` with a non-200 status.

    ``detail`` says, for the mock's journal, why Zammad answered this way; the
    PBX never sees it. ``code`` names the case (``duplicate-call``,
    ``unknown-call``, ``unknown-event``, ``invalid-token``...).
    """

    def __init__(self, status: int, message: str, detail: str = "", code: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or message
        self.code = code  # what happened, for the mock's findings: e.g. "unknown-call"

    @property
    def body(self) -> dict[str, str]:
        return {"error": self.message}
