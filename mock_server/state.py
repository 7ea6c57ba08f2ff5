"""Everything one mock holds: configuration, faults, caller log, journal.

The app factory creates one :class:`MockState` and attaches it to the app;
there is no module-level state, so tests can run many mocks side by side.
One process owns it all, in memory: a change through ``/__admin`` is seen
whole by the next request, and every read sees every earlier push.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from flask import Flask

from .admin.faults import matches
from .admin.journal import Journal
from .db import WriteBehind
from .zammad.call_log import CallLog
from .zammad.caller_id import Directory
from .zammad.config import MockConfig

EXTENSION_KEY = "zammad_cti"


class MockState:
    def __init__(self, config: MockConfig, calls: CallLog, journal: Journal,
                 faults: Iterable[dict[str, Any]] = (), persistence: WriteBehind | None = None) -> None:
        self.calls = calls
        self.journal = journal
        self.persistence = persistence
        self._lock = threading.Lock()
        self._config = config
        self._directory = Directory(config.contacts, config.first_contact_id)
        self._faults: list[dict[str, Any]] = list(faults)

    @property
    def config(self) -> MockConfig:
        return self._config

    @property
    def directory(self) -> Directory:
        return self._directory

    def replace_config(self, config: MockConfig) -> None:
        """Swap the configuration; the next request sees it whole."""
        directory = Directory(config.contacts, config.first_contact_id)
        with self._lock:
            self._config, self._directory = config, directory

    def token_valid(self, token: Any) -> bool:
        return self._config.accepts_token(token)

    # Faults ---------------------------------------------------------------

    @property
    def faults(self) -> list[dict[str, Any]]:
        return list(self._faults)

    def add_fault(self, fault: dict[str, Any]) -> None:
        with self._lock:
            self._faults = [*self._faults, fault]

    def remove_faults(self, fault_id: str | None = None) -> int:
        """Remove one fault (by id) or all; returns how many went."""
        with self._lock:
            kept = [f for f in self._faults if fault_id is not None and f.get("id") != fault_id]
            removed = len(self._faults) - len(kept)
            self._faults = kept
        return removed

    def take_fault(self, event: Any) -> dict[str, Any] | None:
        """The fault that applies to this request, if any; uses up one of its ``times``."""
        if not self._faults:  # the common case, without the lock
            return None
        with self._lock:
            for index, fault in enumerate(self._faults):
                if not matches(fault, event):
                    continue
                if "times" in fault:
                    left = fault["times"] - 1
                    self._faults = (self._faults[:index] + ([{**fault, "times": left}] if left > 0 else [])
                                    + self._faults[index + 1:])
                return fault
        return None

    # Lifetime -------------------------------------------------------------

    def reset(self) -> None:
        """Clear the caller log and the journal (configuration and faults stay)."""
        self.calls.clear()
        self.journal.clear()

    def close(self) -> tuple[int, int] | None:
        """Write what is left behind and close the file; (calls, requests) it holds, or None."""
        persistence, self.persistence = self.persistence, None
        written = persistence.close() if persistence is not None else None
        return written


def mock_state(app: Flask) -> MockState:
    return app.extensions[EXTENSION_KEY]
