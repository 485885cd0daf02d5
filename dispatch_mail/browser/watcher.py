"""Seeing a save: the mtime, size and inode of every input, polled, with a burst waited out.

Polling, not inotify: standard library only, and it works the same on every
platform and on network file systems. A scan costs a few hundred stats.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

POLL_SECONDS = 0.3
SETTLE_SECONDS = 0.1  # a burst of saves is over when one scan this long after the last sees nothing
MAX_SETTLE_SECONDS = 2.0

Log = Callable[[str], None]
Signature = dict[str, tuple[int, int, int]]  # path -> (mtime_ns, size, inode)


class Watcher:
    """Calls ``on_change`` with the changed paths after every settled change of the inputs.

    The inputs are ``project_file`` and every file under ``folders()``, asked anew
    on each scan, since the templates folder is known for sure only after a build.
    """

    def __init__(
        self,
        project_file: Path,
        folders: Callable[[], tuple[Path, ...]],
        on_change: Callable[[set[str]], object],
        *,
        stopping: threading.Event,
        log: Log,
        poll_interval: float = POLL_SECONDS,
    ) -> None:
        self.project_file = project_file
        self.folders = folders
        self.on_change = on_change
        self.stopping = stopping
        self.log = log
        self.poll_interval = poll_interval

    def scan(self) -> Signature:
        """mtime, size and inode of every input: enough to see edits, creations, deletions."""
        signature: Signature = {}
        _stat_into(signature, self.project_file)
        for folder in self.folders():
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = [d for d in dirnames if not _ignored(d)]
                for name in filenames:
                    if not _ignored(name):
                        _stat_into(signature, Path(dirpath, name))
        return signature

    def run(self, seen: Signature) -> None:
        """Poll until ``stopping`` is set; ``seen`` is the state the current build was made from."""
        while not self.stopping.wait(self.poll_interval):
            try:
                current = self.scan()
                if current == seen:
                    continue
                settled = self._settle(current)
                if settled is None:
                    return
                changed = {p for p in settled.keys() | seen.keys() if settled.get(p) != seen.get(p)}
                seen = settled
                self.on_change(changed)
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any surprise
                self.log(f"preview: watching failed once: {type(exc).__name__}: {exc}")

    def _settle(self, current: Signature) -> Signature | None:
        """Wait out a burst of saves (an editor writing several files, a git checkout)."""
        deadline = time.monotonic() + MAX_SETTLE_SECONDS
        while time.monotonic() < deadline:
            if self.stopping.wait(SETTLE_SECONDS):
                return None
            again = self.scan()
            if again == current:
                break
            current = again
        return current


def is_within(path: str, folder: Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (both absolute, as the scans produce them)."""
    return path.startswith(str(folder) + os.sep)


def _stat_into(signature: Signature, path: Path) -> None:
    try:
        st = path.stat()
    except OSError:  # absent, or deleted between listing and stat
        return
    signature[str(path)] = (st.st_mtime_ns, st.st_size, st.st_ino)


def _ignored(name: str) -> bool:
    """Editor swap and backup files, hidden folders and caches: saving them changes nothing."""
    return (
        name.startswith((".", "#"))
        or name.endswith(("~", ".swp", ".swx", ".tmp"))
        or name == "__pycache__"
    )
