"""How far each worker's journal writer has got, so that a reader in one worker sees every worker's requests.

A journal writer gathers requests for up to 50 ms before it stores them. A
reader (``/__admin/requests``, ``/__admin/findings``, a report) may run in
another worker process than the one that answered a push a moment ago, and
must not miss it. So every journal claims a slot in a small file beside its
database, which every worker maps into memory: its process id, how many
requests it has queued and how many it has stored. A reader notes what every
live writer has queued and waits until each has stored as much: at most
the writers' gathering moment and a batch's write.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import time
from pathlib import Path

SLOTS = 256  # journals sharing one file: worker processes, and apps a test opens on it
_SLOT = struct.Struct("<QQQ")  # pid, requests queued, requests stored
_SIZE = SLOTS * _SLOT.size


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterBoard:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)  # zeros: no writer, nothing queued
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)  # the mapping stays valid
        self._queued = self._stored = 0
        self._pid = os.getpid()
        self._count_lock = threading.Lock()
        self._slot = self._claim()

    def _offset(self, slot: int) -> int:
        return slot * _SLOT.size

    def _read(self, slot: int) -> tuple[int, int, int]:
        return _SLOT.unpack_from(self._map, self._offset(slot))

    def _claim(self) -> int:
        with open(self.path, "rb") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # two workers starting at once take different slots
            for slot in range(SLOTS):
                pid = self._read(slot)[0]
                if pid == 0 or not _alive(pid):
                    _SLOT.pack_into(self._map, self._offset(slot), self._pid, 0, 0)
                    return slot
        raise RuntimeError(f"{self.path}: more than {SLOTS} journals use this file at once")

    def release(self) -> None:
        _SLOT.pack_into(self._map, self._offset(self._slot), 0, 0, 0)

    # The journal of this process ---------------------------------------------

    def queued(self) -> None:
        with self._count_lock:  # request threads queue concurrently
            self._queued += 1
            _SLOT.pack_into(self._map, self._offset(self._slot), self._pid, self._queued, self._stored)

    def stored(self, count: int) -> None:
        """``count`` more requests are stored (or given up on): readers need not wait for them."""
        with self._count_lock:
            self._stored += count
            _SLOT.pack_into(self._map, self._offset(self._slot), self._pid, self._queued, self._stored)

    # Readers ------------------------------------------------------------------

    def others_pending(self) -> dict[int, tuple[int, int]]:
        """The other live writers that have queued more than they stored: slot -> (pid, queued)."""
        return {slot: pending for slot, pending in self._pending().items() if slot != self._slot}

    def caught_up(self, pending: dict[int, tuple[int, int]]) -> bool:
        """Whether every writer in ``pending`` has stored what it had queued then (or is gone)."""
        for slot, (pid, queued) in pending.items():
            now_pid, _, stored = self._read(slot)
            if now_pid == pid and stored < queued:
                return False
        return True

    def _pending(self) -> dict[int, tuple[int, int]]:
        pending = {}
        for slot in range(SLOTS):
            pid, queued, stored = self._read(slot)
            if pid and stored < queued and _alive(pid):
                pending[slot] = (pid, queued)
        return pending

    def wait_for_writers(self, timeout: float = 10) -> bool:
        """Wait until every live writer has stored what it had queued when this was called."""
        pending = self._pending()
        deadline = time.monotonic() + timeout
        while not self.caught_up(pending):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True
