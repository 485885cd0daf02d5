"""WAL checkpoints off the sending thread, for the length of a send.

SQLite's automatic checkpoint runs inside a commit and fsyncs: on the event loop
it stalls every connection for a few ms (3% of a send's time). A thread with its
own connection checkpoints passively instead; commits stay as durable.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from dispatch_mail.delivery.journal.file import BUSY_TIMEOUT


class Checkpointer:
    """Checkpoints ``path``'s WAL every ``interval`` seconds while it runs."""

    def __init__(self, conn: sqlite3.Connection, path: Path, interval: float = 1.0):
        self.conn, self.path, self.interval = conn, path, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="dispatch-journal-checkpoint", daemon=True
        )

    def start(self) -> Checkpointer | None:
        """Start, or None where the sending connection cannot hand its checkpoints over."""
        try:
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error:
            return None  # SQLite checkpoints in the commits, as it does by default
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.conn.execute("PRAGMA wal_autocheckpoint=1000")
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass

    def _loop(self) -> None:
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    pass  # busy or closing: the next round tries again
        finally:
            conn.close()
