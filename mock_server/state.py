"""Everything one mock instance holds: configuration, caller log, journal.

The app factory creates one :class:`MockState` and attaches it to the app;
there is no module-level state, so tests can run many mocks side by side.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask

from .admin.journal import Journal
from .zammad.caller_id import Directory
from .db import Database
from .zammad.call_log import CallLog
from .zammad.config import MockConfig
from .zammad.endpoint import token_matches

EXTENSION_KEY = "zammad_cti"


class MockState:
    def __init__(self, config: MockConfig, db: Database, calls: CallLog, journal: Journal) -> None:
        self._lock = threading.Lock()
        self.db = db
        self._config = config
        self._directory = Directory(config.contacts)
        self.calls = calls
        self.journal = journal

    @property
    def config(self) -> MockConfig:
        return self._config

    @property
    def directory(self) -> Directory:
        return self._directory

    def replace_config(self, config: MockConfig) -> None:
        """Swap the configuration; the next request sees it whole (never half of each)."""
        directory = Directory(config.contacts)
        with self._lock:
            self._config, self._directory = config, directory

    def token_valid(self, token: Any) -> bool:
        return token_matches(token, self._config.token)

    def reset(self) -> None:
        self.calls.clear()
        self.journal.clear()

    def close(self) -> None:
        self.db.close()


def mock_state(app: Flask) -> MockState:
    return app.extensions[EXTENSION_KEY]
