"""Where the contract and the fixtures are, in a source tree and in an installed wheel.

The repository keeps ``openapi.yaml`` and ``fixtures/`` at its top, where users
read them; the wheel carries copies under ``mock_server/_data`` (see
``pyproject.toml``). Editable installs and source checkouts use the originals.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_BUNDLED = _PACKAGE / "_data"
_SOURCE_TREE = _PACKAGE.parent


def data_path(name: str) -> Path:
    """The path of ``openapi.yaml`` or ``fixtures/...``, wherever the project is."""
    for root in (_BUNDLED, _SOURCE_TREE):
        candidate = root / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} is neither in {_BUNDLED} nor in {_SOURCE_TREE}")


def openapi_path() -> Path:
    return data_path("openapi.yaml")


def fixtures_dir() -> Path:
    return data_path("fixtures")


def documented_config_path() -> Path:
    return data_path("fixtures/documented-config.json")


def schema_path(name: str) -> Path:
    return _PACKAGE / "schemas" / name
