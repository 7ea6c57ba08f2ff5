"""Everything one mock holds: configuration, faults, caller log, journal.

The app factory creates one :class:`MockState` and attaches it to the app;
there is no module-level state, so tests can run many mocks side by side.
Configuration and faults live in the database's shared settings, so that
``PUT /__admin/config`` or a new fault reaches every worker process.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from typing import Any

from flask import Flask

from .admin.faults import matches
from .admin.journal import Journal
from .db import Database, SharedSettings
from .zammad.call_log import CallLog
from .zammad.caller_id import Directory
from .zammad.config import MockConfig

EXTENSION_KEY = "zammad_cti"


class MockState:
    def __init__(self, config: MockConfig, db: Database, calls: CallLog, journal: Journal,
                 faults: Iterable[dict[str, Any]] = (), boot_id: str | None = None) -> None:
        self.db = db
        self.calls = calls
        self.journal = journal
        self._settings = SharedSettings(db)
        self._lock = threading.Lock()
        self._generation: object = None
        self._config = config
        self._directory = Directory(config.contacts, config.first_contact_id)
        self._faults: list[dict[str, Any]] = list(faults)
        # A new start applies its configuration and faults; another worker of the same start adopts
        # what is there, which /__admin may have changed since.
        self._settings.start(boot_id or uuid.uuid4().hex, config=config.to_shared(), faults=self._faults)
        self.refresh()

    def refresh(self) -> None:
        """Pick up configuration and faults another worker changed (one read when nothing did)."""
        generation = self._settings.generation()
        if generation == self._generation:
            return
        values = self._settings.read("config", "faults")
        with self._lock:
            if "config" in values and values["config"] != self._config.to_shared():
                self._config = MockConfig.from_shared(values["config"], token=self._config.token)
                self._directory = Directory(self._config.contacts, self._config.first_contact_id)
            self._faults = values.get("faults") or []
            self._generation = generation

    @property
    def config(self) -> MockConfig:
        return self._config

    @property
    def directory(self) -> Directory:
        return self._directory

    def replace_config(self, config: MockConfig) -> None:
        """Swap the configuration; the next request, in any worker, sees it whole."""
        self._settings.write(config=config.to_shared())
        with self._lock:
            self._config, self._directory = config, Directory(config.contacts, config.first_contact_id)
        self.refresh()

    def token_valid(self, token: Any) -> bool:
        return self._config.accepts_token(token)

    # Faults ---------------------------------------------------------------

    @property
    def faults(self) -> list[dict[str, Any]]:
        return list(self._faults)

    def add_fault(self, fault: dict[str, Any]) -> None:
        self._settings.update("faults", lambda current: ([*(current or []), fault], None))
        self.refresh()

    def remove_faults(self, fault_id: str | None = None) -> int:
        """Remove one fault (by id) or all; returns how many went."""
        def change(current: list[dict[str, Any]] | None):
            current = current or []
            kept = [f for f in current if fault_id is not None and f.get("id") != fault_id]
            return kept, len(current) - len(kept)
        removed = self._settings.update("faults", change)
        self.refresh()
        return removed

    def take_fault(self, event: Any) -> dict[str, Any] | None:
        """The fault that applies to this request, if any; uses up one of its ``times``."""
        candidates = [f for f in self._faults if matches(f, event)]
        if not candidates:
            return None
        chosen = candidates[0]
        if "times" not in chosen:
            return chosen

        def use_once(current: list[dict[str, Any]] | None):
            current = current or []
            for index, fault in enumerate(current):
                if fault.get("id") == chosen["id"]:
                    left = fault["times"] - 1
                    kept = current[:index] + ([{**fault, "times": left}] if left > 0 else []) + current[index + 1:]
                    return kept, fault
            return current, None  # another worker used it up first
        taken = self._settings.update("faults", use_once)
        self.refresh()
        return taken

    # Lifetime -------------------------------------------------------------

    def reset(self) -> None:
        """Clear the caller log and the journal (configuration and faults stay)."""
        self.calls.clear()
        self.journal.clear()

    def close(self) -> None:
        self.journal.close()
        self.db.close()


def mock_state(app: Flask) -> MockState:
    return app.extensions[EXTENSION_KEY]
