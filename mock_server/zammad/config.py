"""The mock's configuration: what a Zammad admin sets on the CTI integration page.

A configuration file (JSON or YAML) holds ``token`` (Zammad's ``cti_token``),
``integration`` (the on/off switch), ``cti_config`` (Zammad's setting of that
name, verbatim, so an admin can paste their real one) and ``contacts`` (the
directory caller identification searches).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..resources import documented_config_path, schema_path

DEFAULT_VIEW_LIMIT = 60


class ConfigError(ValueError):
    """A configuration that the mock cannot run; the message says where and why."""


@lru_cache(maxsize=256)  # a PBX sends the same token with every push, and the journal asks again
def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class MockConfig:
    """``token`` is None when this process only knows the token's digest (set by another worker)."""

    token: str | None = field(repr=False)
    cti_config: Mapping[str, Any] | None
    integration: bool = True
    contacts: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    token_sha256: str = ""

    def __post_init__(self) -> None:
        if self.token is not None:
            object.__setattr__(self, "token_sha256", token_digest(self.token))

    def accepts_token(self, given: Any) -> bool:
        """Whether ``given`` is the token; digests compared in constant time."""
        return isinstance(given, str) and hmac.compare_digest(token_digest(given), self.token_sha256)

    def to_shared(self) -> dict[str, Any]:
        """What other worker processes get: everything but the clear token."""
        return {
            "token_sha256": self.token_sha256,
            "integration": self.integration,
            "cti_config": self.cti_config,
            "contacts": [dict(c) for c in self.contacts],
        }

    @classmethod
    def from_shared(cls, data: Mapping[str, Any], token: str | None = None) -> MockConfig:
        """The inverse of :meth:`to_shared`; ``token`` is kept when its digest still matches."""
        if token is not None and token_digest(token) != data["token_sha256"]:
            token = None
        return cls(token=token, cti_config=data["cti_config"], integration=data["integration"],
                   contacts=tuple(data["contacts"]), token_sha256=data["token_sha256"])

    @property
    def view_limit(self) -> int:
        """Zammad: ``cti_config['view_limit'] || 60``."""
        raw = (self.cti_config or {}).get("view_limit")
        try:
            return int(raw) if raw not in (None, "") else DEFAULT_VIEW_LIMIT
        except (TypeError, ValueError):
            return DEFAULT_VIEW_LIMIT

    def to_dict(self, mask_token: bool = False) -> dict[str, Any]:
        return {
            "token": "***" if mask_token else self.token,
            "integration": self.integration,
            "cti_config": self.cti_config,
            "contacts": [dict(c) for c in self.contacts],
        }


_validator: jsonschema.Draft202012Validator | None = None


def _config_validator() -> jsonschema.Draft202012Validator:
    global _validator
    if _validator is None:
        schema = json.loads(schema_path("config.schema.json").read_text(encoding="utf-8"))
        _validator = jsonschema.Draft202012Validator(schema)
    return _validator


def config_from_mapping(data: Any, source: str = "configuration") -> MockConfig:
    """Validate a parsed configuration and build a :class:`MockConfig`."""
    errors = sorted(_config_validator().iter_errors(data), key=lambda e: list(e.path))
    if errors:
        lines = []
        for error in errors[:5]:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            lines.append(f"  {where}: {error.message}")
        raise ConfigError(f"{source} is not a valid mock configuration:\n" + "\n".join(lines))
    return MockConfig(
        token=data["token"],
        integration=data.get("integration", True),
        cti_config=data["cti_config"],
        contacts=tuple(data.get("contacts", ())),
    )


def parse_config_text(text: str, source: str = "configuration") -> MockConfig:
    """JSON or YAML text (YAML is a superset of JSON, but JSON errors read better)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source} is neither JSON nor YAML: {exc}") from exc
    return config_from_mapping(data, source)


def load_config(path: str | Path) -> MockConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
    return parse_config_text(text, source=str(path))


def documented_config() -> MockConfig:
    """The documentation's Munich/Berlin configuration (fixtures/documented-config.json)."""
    return load_config(documented_config_path())
