"""`--state-file PATH`: all API state in one SQLite file (standard library), written synchronously
inside each state transition, before the 2xx leaves, so a restart (or a kill -9) loses no
acknowledged write and the file is never half-written (SQLite's atomic commit, WAL, FULL sync).

What is saved is a snapshot of every store plus the shared Let'sTrade state and the clock, so
stores need no persistence code of their own; the cost of a write grows with the state's size,
which suits a shared sandbox (thousands of records), not a million-row benchmark.
"""

from __future__ import annotations

import pickle
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    seed: int
    apis: tuple[str, ...]
    shared: Any
    stores: dict[str, Any]
    clock: dict[str, Any]


class StateFileError(RuntimeError):
    """The state file cannot be used (unreadable, or made by a different configuration)."""


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), format INTEGER NOT NULL,"
                " saves INTEGER NOT NULL, snapshot BLOB NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise StateFileError(f"cannot open state file {path}: {exc}") from None
        self.saves = 0

    def load(self) -> Snapshot | None:
        row = self._db.execute("SELECT format, saves, snapshot FROM state WHERE id = 1").fetchone()
        if row is None:
            return None
        if row[0] != FORMAT:
            raise StateFileError(f"state file {self.path} has format {row[0]}; this mock reads format {FORMAT}")
        self.saves = int(row[1])
        try:
            snapshot = pickle.loads(row[2])  # our own file, written by save()
        except Exception as exc:
            raise StateFileError(f"state file {self.path} cannot be read: {exc}") from None
        if not isinstance(snapshot, Snapshot):
            raise StateFileError(f"state file {self.path} does not hold a mock snapshot")
        return snapshot

    def save(self, snapshot: Snapshot) -> None:
        blob = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self.saves += 1
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO state (id, format, saves, snapshot) VALUES (1, ?, ?, ?)",
                    (FORMAT, self.saves, blob),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._db.close()
