"""The mock's configuration: what a Zammad admin sets on the CTI integration page.

A configuration file (JSON or YAML) mirrors Zammad's settings: ``token``
(``cti_token``, a setting of its own: it may come from ``--token`` instead),
``integration`` (``cti_integration``, the on/off switch), ``cti_config``
(Zammad's setting of that name, verbatim, so an admin can paste their real
one), ``zammad`` (the version profile to answer as, see :mod:`.profiles`),
``contacts`` (the users caller identification searches) and ``agents`` (who
may read the caller log, with their API tokens).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..resources import documented_config_path, schema_path
from .caller_id import extract_numbers
from .profiles import Profile, UnknownProfile, load_profile

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
    zammad: str = ""  # the version profile's name, "" for the default
    agents: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default=(), compare=False)  # hints for the user, printed on start

    def __post_init__(self) -> None:
        if self.token is not None:
            object.__setattr__(self, "token_sha256", token_digest(self.token))

    @property
    def profile(self) -> Profile:
        return load_profile(self.zammad or None)

    @property
    def first_contact_id(self) -> int:
        """Users 1 (Zammad's system user) and the agents come before the contacts."""
        return max([1, *(int(agent["id"]) for agent in self.agents)]) + 1

    def agent_for_api_token(self, given: str) -> Mapping[str, Any] | None:
        for agent in self.agents:
            token = agent.get("token")
            if isinstance(token, str) and hmac.compare_digest(token.encode(), given.encode("utf-8", "surrogatepass")):
                return agent
        return None

    def agent_by_number(self, number: Any) -> Mapping[str, Any] | None:
        """The agent ``answeringNumber`` names (Zammad: a known caller ID of an agent, or the phone itself)."""
        wanted = set(extract_numbers(number))
        for agent in self.agents:
            phone = agent.get("phone")
            if phone is not None and (phone == number or wanted & set(extract_numbers(phone))):
                return agent
        return None

    def accepts_token(self, given: Any) -> bool:
        """Whether ``given`` is the token; digests compared in constant time."""
        return isinstance(given, str) and hmac.compare_digest(token_digest(given), self.token_sha256)

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
            "zammad": self.profile.name,
            "cti_config": self.cti_config,
            "contacts": [dict(c) for c in self.contacts],
            "agents": [{**a, "token": "***"} if mask_token and "token" in a else dict(a) for a in self.agents],
        }


_validator: jsonschema.Draft202012Validator | None = None


def _config_validator() -> jsonschema.Draft202012Validator:
    global _validator
    if _validator is None:
        schema = json.loads(schema_path("config.schema.json").read_text(encoding="utf-8"))
        _validator = jsonschema.Draft202012Validator(schema)
    return _validator


_CTI_CONFIG_KEYS = {"outbound", "inbound", "notify_map", "view_limit"}


def config_from_mapping(data: Any, source: str = "configuration", token: str | None = None) -> MockConfig:
    """Validate a parsed configuration and build a :class:`MockConfig`.

    ``token`` (``--token``) stands in for a file without one; with neither, a
    random token is made (the start-up banner prints it). A bare
    ``cti_config`` pasted as the whole file is taken as such, with a hint.
    """
    notes: list[str] = []
    if isinstance(data, dict) and "cti_config" not in data and data and set(data) <= _CTI_CONFIG_KEYS:
        notes.append(f"{source} holds a bare cti_config (Zammad's setting): taken as "
                     '{"cti_config": <the file>}; put it under "cti_config" to add a token, contacts or agents')
        data = {"cti_config": data}
    errors = sorted(_config_validator().iter_errors(data), key=lambda e: list(e.path))
    if errors:
        lines = []
        for error in errors[:5]:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            lines.append(f"  {where}: {error.message}")
        raise ConfigError(f"{source} is not a valid mock configuration:\n" + "\n".join(lines))
    try:
        profile = load_profile(data.get("zammad"))
    except UnknownProfile as exc:
        raise ConfigError(f"{source}: zammad: {exc}") from None
    chosen = token or data.get("token")
    if not chosen:
        chosen = secrets.token_urlsafe(12)
        notes.append(f"{source} names no token and none was given with --token: made a random one")
    agents = tuple({**agent, "id": int(agent.get("id") or 2 + index)} for index, agent in enumerate(data.get("agents", ())))
    return MockConfig(
        token=chosen,
        integration=data.get("integration", True),
        cti_config=data["cti_config"],
        contacts=tuple(data.get("contacts", ())),
        zammad=profile.name if data.get("zammad") else "",
        agents=agents,
        notes=tuple(notes),
    )


def parse_config_text(text: str, source: str = "configuration", token: str | None = None) -> MockConfig:
    """JSON or YAML text (YAML is a superset of JSON, but JSON errors read better)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source} is neither JSON nor YAML: {exc}") from exc
    return config_from_mapping(data, source, token)


def load_config(path: str | Path, token: str | None = None) -> MockConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
    return parse_config_text(text, source=str(path), token=token)


def documented_config() -> MockConfig:
    """The documentation's Munich/Berlin configuration (fixtures/documented-config.json)."""
    return load_config(documented_config_path())
