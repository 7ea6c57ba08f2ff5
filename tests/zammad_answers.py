"""What a real Zammad answers, as literals: the tests compare the mock with these, not with its own constants.

The current Zammad (6.x, 7.x) first; ``ZAMMAD_2021`` holds the answers of the 2021 code (5.x) where they differ.
"""

import re

ERROR_ID = re.compile(r"^Error ID [A-Za-z0-9_-]{8}: Please contact your administrator\.$")
FEATURE_DISABLED = {"error": "Feature is disabled, please contact your administrator!"}
NOT_CONFIGURED = {"error": "Feature not configured, please contact your admin!"}
INVALID_TOKEN = {"error": "Invalid token, please contact your admin!"}
INVALID_DIRECTION = {"error": "Invalid 'direction'!"}
ALREADY_EXISTS = {"error": "This object already exists.", "error_human": "This object already exists."}
NO_ROUTE = {"error": "This page doesn't exist.", "error_human": "This page doesn't exist."}
AUTHENTICATION_REQUIRED = {"error": "Authentication required", "error_human": "Authentication required"}
REJECT = {"action": "reject", "reason": "busy"}


def missing_column(column: str) -> dict:
    """A NOT NULL violation as Zammad words PostgreSQL 13+'s message."""
    text = f"Attribute '{column}\" of relation \"cti_logs' required!"
    return {"error": text, "error_human": text}


ZAMMAD_2021 = {
    "FEATURE_DISABLED": {"error": "Feature is disable, please contact your admin to enable it!"},
    "INVALID_DIRECTION": {"error": "Invalid direction!"},
    "ALREADY_EXISTS": {"error": "Object already exists!", "error_human": "Object already exists!"},
}
