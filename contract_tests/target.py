"""The system under test, reached over HTTP alone: a Zammad, a vendor's stand-in, or the mock.

A target is named the way Zammad's admin page shows it: the full endpoint URL,
``https://zammad.example.com/api/v1/cti/<token>``. The token is the endpoint's
only secret, so everything this package prints or writes uses :attr:`Target.masked_url`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MASK = "***"
_ENDPOINT = re.compile(r"^(?P<base>.*?)/api/v1/cti/(?P<token>[^/?#]+)/?$")


class TargetError(ValueError):
    """A target URL that is not a CTI endpoint URL."""


@dataclass(frozen=True)
class Target:
    base_url: str  # scheme://host[:port][/prefix], no trailing slash
    token: str = field(repr=False)  # pytest prints fixture values in tracebacks
    builtin_mock: bool = False

    @classmethod
    def from_url(cls, url: str, builtin_mock: bool = False) -> Target:
        parts = urlsplit(url)
        # The URL may hold the token anywhere when it is malformed: show only scheme and host.
        shown = f"{parts.scheme}://{parts.netloc}/..." if parts.netloc else "the target URL"
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TargetError(f"{shown} is not an http(s) URL; pass the CTI endpoint URL, "
                              "e.g. https://zammad.example.com/api/v1/cti/TOKEN")
        match = _ENDPOINT.match(url.split("?", 1)[0])
        if not match or match["token"] == "log":
            hint = (" (/api/v1/integration/cti is the old documentation's path; Zammad routes /api/v1/cti)"
                    if "/integration/cti/" in parts.path else "")
            raise TargetError(
                f"{shown} is not a CTI endpoint URL: expected .../api/v1/cti/TOKEN, as Zammad's admin page "
                f"(Integrations > CTI (generic)) shows it{hint}"
            )
        return cls(base_url=match["base"].rstrip("/"), token=match["token"], builtin_mock=builtin_mock)

    @property
    def endpoint_url(self) -> str:
        return self.endpoint_url_with(self.token)

    def endpoint_url_with(self, token: str) -> str:
        return f"{self.base_url}/api/v1/cti/{token}"

    @property
    def masked_url(self) -> str:
        return self.endpoint_url_with(MASK)

    @property
    def caller_log_url(self) -> str:
        return f"{self.base_url}/api/v1/cti/log"

    def admin_url(self, route: str) -> str:
        """The built-in mock's own API (``/__admin/...``); a real Zammad has none."""
        return f"{self.base_url}/__admin/{route.lstrip('/')}"

    def mask(self, text: str) -> str:
        """``text`` with every occurrence of the token replaced by ``***``."""
        return text.replace(self.token, MASK) if self.token else text

    def __str__(self) -> str:
        return self.masked_url


def mask_url(url: str) -> str:
    """Mask the token of anything that looks like a CTI endpoint URL."""
    return re.sub(r"(/api/v1/cti/)(?!log\b)[^/?#\s'\"]+", r"\1" + MASK, url)
