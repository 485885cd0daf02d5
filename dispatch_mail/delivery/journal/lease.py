"""The journal's lease: one send at a time per journal, so that nobody is sent the issue twice.

Two sends of one journal (a cron run overlapping the last one, a second terminal)
would each take the other's pending rows, and read the other's in-flight rows as
a crash's. A send therefore holds a lease, a row of the journal's ``meta`` that
names the holder (pid, host, since when) and that the holder refreshes (its
heartbeat) while it runs. Another send is refused while the holder lives. A lease
left by a process that died (SIGKILL, power loss) is taken over: on the same host
when its pid is gone (or is another process now), from another host when its
heartbeat is older than the staleness limit (clocks of the two hosts must agree
to within that limit).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dispatch_mail.delivery.journal.file import BUSY_TIMEOUT, rollback
from dispatch_mail.errors import JournalBusy
from dispatch_mail.project.paths import shown_path

LEASE_KEY = "lease"
DEFAULT_STALE_AFTER = 60.0  # seconds without a heartbeat after which another host may take over
MAX_HEARTBEAT_INTERVAL = 5.0


@dataclass(frozen=True)
class Holder:
    """Who holds a journal's lease, and how to tell whether they still live."""

    pid: int
    host: str
    boot: str  # the kernel's boot id: a pid of before a reboot is nobody's now
    started: str  # the process's start time as the kernel counts it: a reused pid is not it
    since: float
    heartbeat: float
    token: str

    @classmethod
    def this_process(cls) -> Holder:
        now = time.time()
        pid = os.getpid()
        return cls(pid, _host(), _boot_id(), _start_time(pid), now, now, secrets.token_hex(8))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        """The holder a lease row names; None for a row that names nobody we could check."""
        try:
            data = json.loads(text)
            holder = cls(
                int(data["pid"]),
                str(data["host"]),
                str(data["boot"]),
                str(data["started"]),
                float(data["since"]),
                float(data["heartbeat"]),
                str(data["token"]),
            )
        except (ValueError, TypeError, KeyError):
            return None
        return holder if holder.pid > 0 else None

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(self.since))
        ago = max(0, round(time.time() - self.heartbeat))
        return f"pid {self.pid} on {self.host}, since {since} (last heartbeat {ago} s ago)"

    def is_alive(self, stale_after: float) -> bool:
        """Whether the holder may still be sending: only then is its lease respected."""
        if self.host != _host():
            return time.time() - self.heartbeat < stale_after
        boot = _boot_id()
        if boot and self.boot and boot != self.boot:
            return False  # the machine restarted since: every process of then is gone
        return _is_running(self.pid, self.started)


def acquire(conn: sqlite3.Connection, path: Path, stale_after: float) -> Holder:
    """Take the journal's lease for this process, or raise JournalBusy naming the holder."""
    mine = Holder.this_process()
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY":
            raise
        raise JournalBusy(
            f"{shown_path(path)}: another process is writing this journal; nothing was sent",
            path,
        ) from None
    try:
        held = holder_of(conn)
        if held is not None and held.is_alive(stale_after):
            raise JournalBusy(
                f"{shown_path(path)}: another send holds this journal: {held.describe()}; "
                "nothing was sent",
                path,
                pid=held.pid,
                host=held.host,
                since=held.since,
            )
        _write(conn, mine)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return mine


def release(conn: sqlite3.Connection, mine: Holder) -> None:
    """Give the lease back, unless someone took it over meanwhile."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            held = holder_of(conn)
            if held is not None and held.token == mine.token:
                conn.execute("DELETE FROM meta WHERE key=?", (LEASE_KEY,))
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
    except sqlite3.Error:
        pass  # a lease we cannot remove names a process that is gone: the next send takes it


def holder_of(conn: sqlite3.Connection) -> Holder | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (LEASE_KEY,)).fetchone()
    return Holder.from_json(str(row[0])) if row else None


def _write(conn: sqlite3.Connection, holder: Holder) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES(?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (LEASE_KEY, holder.to_json()),
    )


class Heartbeat:
    """A thread that refreshes this process's lease, and notices when it was taken over."""

    def __init__(self, path: Path, mine: Holder, stale_after: float):
        self.path = path
        self.mine = mine
        self.interval = min(MAX_HEARTBEAT_INTERVAL, stale_after / 4)
        self.lost: Holder | None = None  # who holds the lease now, when it is no longer ours
        self.lost_to_nobody = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatch-lease", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=BUSY_TIMEOUT + 1)

    @property
    def is_lost(self) -> bool:
        return self.lost is not None or self.lost_to_nobody

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(
                str(self.path), isolation_level=None, timeout=BUSY_TIMEOUT, check_same_thread=False
            )
        except sqlite3.Error:
            return
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            while not self._stop.wait(self.interval) and not self.is_lost:
                try:
                    self._beat(conn)
                except sqlite3.Error:
                    pass  # a full disk or a long lock: the next beat tries again
        finally:
            conn.close()

    def _beat(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            held = holder_of(conn)
            if held is None or held.token != self.mine.token:
                self.lost, self.lost_to_nobody = held, held is None
            else:
                _write(conn, replace(self.mine, heartbeat=time.time()))
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise


# ------------------------------------------------------------------ this machine, its processes
def _host() -> str:
    return socket.gethostname()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from Linux's /proc; None where there is no such file."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after "pid (name) ": the name may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _start_time(pid: int) -> str:
    stat = _proc_stat(pid)
    return stat[1] if stat else ""


def _is_running(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    stat = _proc_stat(pid)
    if stat is None:  # gone just now, or no /proc here: then a live pid is taken for the holder
        return not Path("/proc/self/stat").exists()
    state, start = stat
    if state in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return not started or start == started
