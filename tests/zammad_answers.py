"""What a real Zammad answers, as literals: the tests compare the mock with these, not with its own constants."""

import re

ERROR_ID = re.compile(r"^Error ID [A-Za-z0-9_-]{8}: Please contact your administrator\.$")
FEATURE_DISABLED = {"error": "Feature is disable, please contact your admin to enable it!"}
NOT_CONFIGURED = {"error": "Feature not configured, please contact your admin!"}
INVALID_TOKEN = {"error": "Invalid token, please contact your admin!"}
INVALID_DIRECTION = {"error": "Invalid direction!"}
ALREADY_EXISTS = {"error": "Object already exists!"}
REJECT = {"action": "reject", "reason": "busy"}
