"""A misbehaving SMTP server in a process of its own, and the soak that sends through it while crashing.

The server (``python tests/faultserver.py --plan PLAN.json --log EVENTS``) is
tests/smtpd.py's aiosmtpd server with a handler that fails on purpose,
randomly but reproducibly: every decision about a recipient is a hash of the
seed, the address and how many times the address was tried, so the same seed
injects the same faults into the same tries whatever the timing.

- ``451-rcpt`` / ``451-data``: a transient refusal at RCPT or after DATA;
- ``421``: "closing" at RCPT, then the connection is closed;
- ``drop``: the message is kept, then the connection dropped before the reply
  (RFC 1047: the sender cannot know the server has it);
- ``stall-rcpt`` / ``stall-data``: no answer for longer than the client's
  timeout (the message is not kept);
- ``550``: a fixed, seeded set of recipients is refused for good at RCPT;
- ``454``: "throttling" at RCPT whenever more than a set number of messages
  were accepted in the last half second.

Every accepted message and every fault is one line appended to the event log
(``kind TAB recipient TAB Message-ID``), written with O_APPEND at once, so the
log is complete whatever happens to the sender: it is the ground truth the soak
counts against.

:class:`Soak` runs the real ``dispatch send`` as a subprocess against that
server, SIGKILLs it at random moments, restarts it until it finishes, and then
checks the server's log against the send journal (tests/test_soak.py at 2,000
recipients, benchmarks/soak.py at 100,000). :class:`AuthWatchServer` is an
in-thread server that records every AUTH command and whether TLS was on
(tests/test_secrets.py).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Self

TESTS = Path(__file__).resolve().parent
if (
    str(TESTS) not in sys.path
):  # `import smtpd` must find tests/smtpd.py, not the standard library's
    sys.path.insert(0, str(TESTS))

from smtpd import DROP, HOST, Recorder, SmtpServer, _FaultySMTP

ROOT = TESTS.parent
SECRET = "soak-unsubscribe-secret-0123456789"
KINDS = ("451-rcpt", "451-data", "421", "drop", "stall-rcpt", "stall-data", "550", "454")
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(<[^>\r\n]*>)")


# ------------------------------------------------------------------ the plan of faults
@dataclass(frozen=True)
class FaultPlan:
    """Shares are per try of a recipient; a recipient meets faults only in its first ``faulty_tries`` tries."""

    seed: int = 1
    rcpt_451: float = 0.04
    close_421: float = 0.001  # each one also halves the sender's rate: see docs/reliability.md
    stall_rcpt: float = 0.002
    data_451: float = 0.03
    drop_after_data: float = 0.004
    stall_data: float = 0.002
    permanent: float = 0.01  # share of the list refused with 550 on every try
    faulty_tries: int = 3
    stall_seconds: float = 3.0  # must be longer than the sender's --timeout
    throttle_limit: int = 200  # at most this many accepted messages in any half second, else 454
    throttle_tries: int = 6  # a recipient is throttled in its first tries only

    def draw(self, *key: object) -> float:
        """A number in [0, 1) fixed by the seed and the key: the same in every run."""
        digest = hashlib.blake2b(
            "|".join(map(str, (self.seed, *key))).encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64

    def is_permanent(self, address: str) -> bool:
        return self.draw("permanent", address) < self.permanent

    def rcpt_fault(self, address: str, attempt: int) -> str | None:
        if attempt > self.faulty_tries:
            return None
        u = self.draw("rcpt", address, attempt)
        for kind, share in (
            ("451-rcpt", self.rcpt_451),
            ("421", self.close_421),
            ("stall-rcpt", self.stall_rcpt),
        ):
            if u < share:
                return kind
            u -= share
        return None

    def data_fault(self, address: str, attempt: int) -> str | None:
        if attempt > self.faulty_tries:
            return None
        u = self.draw("data", address, attempt)
        for kind, share in (
            ("451-data", self.data_451),
            ("drop", self.drop_after_data),
            ("stall-data", self.stall_data),
        ):
            if u < share:
                return kind
            u -= share
        return None


REPLIES = {
    "451-rcpt": "451 4.3.0 Temporary local problem, try again",
    "451-data": "451 4.3.0 Queue file write error, try again",
    "421": "421 4.3.2 Service shutting down, closing transmission channel",
    "550": "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table",
    "454": "454 4.7.0 Throttling failure: Maximum sending rate exceeded",
}


class FaultHandler(Recorder):
    """The aiosmtpd handler of the soak: faults from a :class:`FaultPlan`, every event appended to a log."""

    def __init__(self, plan: FaultPlan, log: Path):
        super().__init__()
        self.plan = plan
        self._log = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._accepted: collections.deque[float] = collections.deque()

    def event(self, kind: str, address: str, message_id: str = "") -> None:
        os.write(
            self._log, f"{kind}\t{address}\t{message_id}\n".encode()
        )  # one append, never buffered

    def _throttled(self) -> bool:
        now = time.monotonic()
        while self._accepted and now - self._accepted[0] > 0.5:
            self._accepted.popleft()
        return len(self._accepted) >= self.plan.throttle_limit

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.tries["RCPT"][address] += 1
        attempt = self.tries["RCPT"][address]
        if self.plan.is_permanent(address):
            self.event("550", address)
            return REPLIES["550"]
        kind = self.plan.rcpt_fault(address, attempt)
        if kind is None and attempt <= self.plan.throttle_tries and self._throttled():
            kind = "454"
        if kind is not None:
            self.event(kind, address)
            if kind == "stall-rcpt":
                await asyncio.sleep(
                    self.plan.stall_seconds
                )  # the client gives up first and hangs up
                return "451 4.4.2 Timeout"
            return REPLIES[kind]  # a 421 closes the connection after it (tests/smtpd.py)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        address = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        data = bytes(envelope.original_content or b"")
        found = _MESSAGE_ID.search(data[:16384])
        message_id = found.group(1).decode("ascii", "replace") if found else ""
        kind = self.plan.data_fault(address, self.tries["RCPT"][address])
        if kind == "stall-data":
            self.event(kind, address, message_id)
            await asyncio.sleep(self.plan.stall_seconds)
            return "451 4.4.2 Timeout"
        if kind == "451-data":
            self.event(kind, address, message_id)
            return REPLIES[kind]
        self._accepted.append(time.monotonic())
        self.event("drop" if kind == "drop" else "accept", address, message_id)
        return DROP if kind == "drop" else "250 2.0.0 Ok: queued"


def serve(plan: FaultPlan, log: Path, port: int = 0) -> None:
    """Run the fault server until SIGTERM; the first line on stdout is ``port N``."""
    server = SmtpServer(FaultHandler(plan, log), port=port)
    server.start()
    print(f"port {server.port}", flush=True)
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.getppid()
    while not stopped and os.getppid() == parent:  # the soak that started us is gone: so are we
        time.sleep(0.2)
    server.stop()


class FaultServerProcess:
    """The fault server as a child process: it outlives every sender we kill."""

    def __init__(self, plan: FaultPlan, log: Path):
        self.plan, self.log = plan, log
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__)),
                "--plan",
                json.dumps(asdict(self.plan)),
                "--log",
                str(self.log),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the server prints its port or dies
        if not line.startswith("port "):
            self.proc.kill()
            raise RuntimeError(f"the fault server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def cpu_seconds(self) -> float:
        try:
            parts = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()  # type: ignore[union-attr]
            return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError, AttributeError):
            return 0.0

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class EventLog:
    """Reads the server's event log as it grows (the soak polls it to kill the sender mid-send)."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._partial = b""
        self.accepted = 0  # messages the server holds (accepted or kept-then-dropped)

    def poll(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return self.accepted
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        self.accepted += sum(1 for line in lines if line.startswith((b"accept\t", b"drop\t")))
        return self.accepted

    def events(self) -> list[tuple[str, str, str]]:
        out = []
        for line in self.path.read_text().splitlines():
            kind, address, message_id = line.split("\t")
            out.append((kind, address, message_id))
        return out


# ------------------------------------------------------------------ the soak
@dataclass
class Crash:
    round: int
    after: float  # seconds after the start of that run
    accepted_before: int
    in_flight: list[str]  # recipients left in 'sending' in the journal


@dataclass
class SoakResult:
    recipients: int
    concurrency: int
    seed: int
    seconds: float = 0.0
    rounds: int = 0
    crashes: list[Crash] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)  # exit status of each run that was not killed
    faults: dict[str, int] = field(default_factory=dict)
    accepted: int = 0  # messages the server holds, copies included
    reached: int = 0  # distinct recipients the server holds a message for
    deliverable: int = 0
    permanent: int = 0
    duplicates_crash: int = 0
    duplicates_drop: int = 0
    reported_uncertain: int = 0  # recipients the journal flags as possibly duplicated
    lost: int = 0
    journal: dict[str, int] = field(default_factory=dict)
    sender_cpu: float = 0.0
    server_cpu: float = 0.0
    problems: list[str] = field(default_factory=list)
    last_stderr: str = ""

    @property
    def duplicates(self) -> int:
        return self.duplicates_crash + self.duplicates_drop

    def summary(self) -> str:
        faults = ", ".join(f"{k} {self.faults.get(k, 0):,}" for k in KINDS)
        in_flight = sum(len(c.in_flight) for c in self.crashes)
        return (
            f"soak: {self.recipients:,} recipients, seed {self.seed}, concurrency {self.concurrency}, "
            f"{self.seconds:.1f}s, {self.rounds} runs; faults: {faults}; "
            f"crashes {len(self.crashes)} ({in_flight} in flight); "
            f"duplicates {self.duplicates} ({self.duplicates_crash} crash, {self.duplicates_drop} post-DATA drop; "
            f"{self.reported_uncertain} flagged possible); reached {self.reached:,}/{self.deliverable:,}; "
            f"failed {self.journal.get('failed', 0):,} (550 set {self.permanent:,}); lost: {self.lost}"
        )


def write_project(root: Path) -> Path:
    """A small newsletter project (the send tests' own); returns the issue folder."""
    from conftest_send import Project

    root.mkdir(parents=True, exist_ok=True)
    return Project(root).issue_dir


def write_list(path: Path, n: int) -> list[str]:
    emails = [f"r{i:06d}@example.com" for i in range(n)]
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,name\n")
        for i, email in enumerate(emails):
            handle.write(f"{email},Reader {i}\n")
    return emails


class Soak:
    """`dispatch send` through the fault server, SIGKILLed ``crashes`` times at random moments, until done."""

    def __init__(
        self,
        folder: Path,
        *,
        recipients: int = 2000,
        concurrency: int = 4,
        seed: int = 1,
        crashes: int = 5,
        plan: FaultPlan | None = None,
        timeout: float = 2.0,
        max_attempts: int = 12,
        budget: float = 170.0,
        log=None,
    ):
        self.folder = folder
        self.n, self.concurrency, self.seed, self.crashes = recipients, concurrency, seed, crashes
        self.plan = plan or FaultPlan(seed=seed)
        self.timeout, self.max_attempts, self.budget = timeout, max_attempts, budget
        self.rng = random.Random(seed)
        self.say = log or (lambda line: None)

    def args(self, issue: Path, csv_path: Path, journal: Path, port: int) -> list[str]:
        return [
            "send",
            str(issue),
            "--list",
            str(csv_path),
            "--yes",
            "--journal",
            str(journal),
            "--concurrency",
            str(self.concurrency),
            "--retry-base",
            "0.05",
            "--throttle-pause",
            "0.2",
            "--timeout",
            f"{self.timeout:g}",
            "--max-attempts",
            str(self.max_attempts),
            "--tls",
            "none",
            "--smtp-host",
            HOST,
            "--smtp-port",
            str(port),
            "-q",
        ]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
        env.update(DISPATCH_UNSUBSCRIBE_SECRET=SECRET, NO_COLOR="1", PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def run(self) -> SoakResult:
        result = SoakResult(self.n, self.concurrency, self.seed)
        issue = write_project(self.folder / "news")
        csv_path = self.folder / "list.csv"
        emails = write_list(csv_path, self.n)
        journal = self.folder / "send.journal"
        log_path = self.folder / "events.log"
        start = self._start = time.monotonic()
        _children_cpu()  # from here on: the senders' CPU
        with FaultServerProcess(self.plan, log_path) as server:
            events = EventLog(log_path)
            args = self.args(issue, csv_path, journal, server.port)
            rounds_left = self.crashes * 2 + 8
            while rounds_left:
                rounds_left -= 1
                result.rounds += 1
                outcome, code, stderr = self._one_run(args, events, result, journal)
                if outcome == "hung":
                    break
                if outcome == "killed":
                    continue
                result.exits.append(code)
                result.last_stderr = stderr
                counts = journal_counts(journal)
                open_rows = (
                    counts.get("pending", 0) + counts.get("sending", 0) + counts.get("held", 0)
                )
                if code in (0, 1) and open_rows == 0:
                    break
                self.say(
                    f"run {result.rounds} exited {code} with {open_rows} open; running again: {stderr.strip()[-300:]}"
                )
                if time.monotonic() - start > self.budget:
                    break
            result.server_cpu = server.cpu_seconds()
        result.seconds = time.monotonic() - start
        self._verify(result, emails, journal, EventLog(log_path).events())
        return result

    def _one_run(
        self, args: list[str], events: EventLog, result: SoakResult, journal: Path
    ) -> tuple[str, int, str]:
        """One `dispatch send`, SIGKILLed at a random moment while crashes remain: (killed|hung|exited, status, stderr)."""
        kill = len(result.crashes) < self.crashes
        # a quarter of the kills come at a random time (start-up, filling the journal, sending);
        # the rest once the server got a random number more messages, plus a random few milliseconds
        by_time = self.rng.random() < 0.25
        delay = self.rng.uniform(0.05, 1.5)
        more = self.rng.randint(1, max(2, self.n // (self.crashes + 1)))
        jitter = self.rng.uniform(0, 0.05)
        out_path, err_path = (
            self.folder / f"run{result.rounds}.out",
            self.folder / f"run{result.rounds}.err",
        )
        with out_path.open("w") as out, err_path.open("w") as err:
            began = time.monotonic()
            hung = False
            accepted_before = events.poll()
            proc = subprocess.Popen(
                [sys.executable, "-m", "dispatch_mail.cli", *args],
                cwd=self.folder,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                hang = began + max(120.0, self.n / 20)  # a run that does not end by then is a hang
                deadline = min(hang, self._start + self.budget)
                while proc.poll() is None:
                    if time.monotonic() > deadline:
                        result.problems.append(
                            f"run {result.rounds} still running after {deadline - began:.0f}s: killed"
                            + (" (the soak's time budget is used up)" if deadline < hang else "")
                        )
                        hung = True
                        break
                    if kill:
                        if by_time and time.monotonic() - began >= delay:
                            break
                        if not by_time and events.poll() - accepted_before >= more:
                            time.sleep(jitter)
                            break
                    time.sleep(0.01)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
            result.sender_cpu += _children_cpu()
        if hung:
            return "hung", proc.returncode, err_path.read_text()
        if proc.returncode == -signal.SIGKILL:
            in_flight = journal_rows(journal, "sending") if journal.exists() else []
            result.crashes.append(
                Crash(result.rounds, time.monotonic() - began, accepted_before, in_flight)
            )
            return "killed", proc.returncode, ""
        return "exited", proc.returncode, err_path.read_text()

    def _verify(
        self,
        result: SoakResult,
        emails: list[str],
        journal: Path,
        events: list[tuple[str, str, str]],
    ) -> None:
        problems = result.problems
        listed = set(emails)
        permanent = {e for e in emails if self.plan.is_permanent(e)}
        deliverable = listed - permanent
        result.deliverable, result.permanent = len(deliverable), len(permanent)
        result.faults = dict(collections.Counter(kind for kind, _, _ in events if kind != "accept"))
        copies: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        for kind, address, message_id in events:
            if kind in ("accept", "drop"):
                copies[address].append((kind, message_id))
        result.accepted = sum(len(c) for c in copies.values())
        result.reached = len(copies)

        rows = {r["email"]: r for r in journal_all(journal)}
        result.journal = dict(collections.Counter(r["state"] for r in rows.values()))
        result.reported_uncertain = sum(1 for r in rows.values() if r["uncertain"])

        strangers = set(copies) - listed
        if strangers:
            problems.append(
                f"{len(strangers)} address(es) not on the list got mail: {sorted(strangers)[:5]}"
            )
        if set(copies) & permanent:
            problems.append(f"550 recipients were accepted: {sorted(set(copies) & permanent)[:5]}")
        lost = deliverable - set(copies)
        result.lost = len(lost)
        if lost:
            problems.append(
                f"{len(lost)} deliverable recipient(s) never reached: {sorted(lost)[:5]}"
            )

        in_flight_any: set[str] = set()
        for crash in result.crashes:
            if len(crash.in_flight) > self.concurrency:
                problems.append(
                    f"crash in run {crash.round}: {len(crash.in_flight)} in flight > concurrency {self.concurrency}"
                )
            in_flight_any.update(crash.in_flight)
        for address, got in copies.items():
            ids = {message_id for _, message_id in got}
            if address in rows and ids != {rows[address]["message_id"]}:
                problems.append(
                    f"{address}: Message-ID(s) {sorted(ids)} differ from the journal's {rows[address]['message_id']}"
                )
            if len(got) < 2:
                continue
            drops = sum(1 for kind, _ in got if kind == "drop")
            crashes = sum(1 for c in result.crashes if address in c.in_flight)
            if len(got) - 1 > drops + crashes:
                problems.append(
                    f"{address}: {len(got)} copies, only {drops} post-DATA drop(s) and {crashes} crash(es) explain them"
                )
            if not rows.get(address, {}).get("uncertain"):
                problems.append(
                    f"{address}: {len(got)} copies but the journal does not flag it as possibly duplicated"
                )
            from_drops = min(
                drops, len(got) - 1
            )  # a copy the server kept before dropping explains one extra
            result.duplicates_drop += from_drops
            result.duplicates_crash += len(got) - 1 - from_drops
        if result.duplicates_crash > self.concurrency * len(result.crashes):
            problems.append(
                f"{result.duplicates_crash} crash duplicates > concurrency × crashes = {self.concurrency * len(result.crashes)}"
            )

        sent = {e for e, r in rows.items() if r["state"] == "sent"}
        if sent != set(copies):
            problems.append(
                f"journal sent ≠ server accepted: {len(sent - set(copies))} sent but not at the server "
                f"({sorted(sent - set(copies))[:3]}), {len(set(copies) - sent)} at the server but not sent "
                f"({sorted(set(copies) - sent)[:3]})"
            )
        failed = {e for e, r in rows.items() if r["state"] == "failed"}
        if failed != permanent:
            extra = sorted(failed - permanent)[:3]
            problems.append(
                f"failed ≠ the 550 set: {len(failed - permanent)} others failed "
                f"({[(e, rows[e]['last_reply']) for e in extra]}), {len(permanent - failed)} of the set not failed"
            )
        for address in sorted(permanent & failed):
            row = rows[address]
            if row["last_code"] != 550 or "550 5.1.1" not in (row["last_reply"] or ""):
                problems.append(
                    f"{address}: failed without the server's 550 reply ({row['last_code']} {row['last_reply']!r})"
                )
                break
        other = set(result.journal) - {"sent", "failed"}
        if other:
            problems.append(f"rows left in {sorted(other)}: {result.journal}")
        if len(rows) != len(listed):
            problems.append(
                f"the journal holds {len(rows)} rows for {len(listed)} listed recipients"
            )
        if result.exits and result.exits[-1] != (1 if permanent else 0):
            problems.append(
                f"the last run exited {result.exits[-1]}, not {(1 if permanent else 0)}"
            )
        if not result.exits:
            problems.append("no run finished")


def _children_cpu() -> float:
    """CPU seconds of all waited-for children so far (the harness adds up the deltas)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    previous = getattr(_children_cpu, "last", 0.0)
    _children_cpu.last = total  # type: ignore[attr-defined]
    return total - previous


def journal_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        found = dict(conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))
    conn.close()
    return found


def journal_rows(path: Path, state: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        try:
            found = [
                r[0] for r in conn.execute("SELECT email FROM recipients WHERE state=?", (state,))
            ]
        except sqlite3.OperationalError:  # killed before the journal had its tables
            found = []
    conn.close()
    return found


def journal_all(path: Path) -> list[dict]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        found = [
            dict(r)
            for r in conn.execute(
                "SELECT email, state, last_code, last_reply, message_id, uncertain, attempts FROM recipients"
            )
        ]
    conn.close()
    return found


# ------------------------------------------------------------------ AUTH, watched
class _AuthWatchSMTP(_FaultySMTP):
    """Records every AUTH command with whether the connection was encrypted, before aiosmtpd judges it."""

    refuse_starttls = False

    async def smtp_AUTH(self, arg: str) -> None:
        recorder = self.event_handler
        with recorder.lock:
            recorder.auth_attempts.append(
                (self.session.ssl is not None, (arg or "").split(" ", 1)[0].upper())
            )
        await super().smtp_AUTH(arg)

    async def smtp_STARTTLS(self, arg: str) -> None:
        if self.refuse_starttls:  # offered, then refused: what a downgrading middlebox does
            await self.push("454 4.7.0 TLS not available due to temporary reason")
            return
        await super().smtp_STARTTLS(arg)


@dataclass
class AuthWatchServer(SmtpServer):
    """tests/smtpd.py's server whose handler lists AUTH attempts: ``handler.auth_attempts`` = [(tls, mechanism)].

    ``refuse_starttls``: STARTTLS is advertised but refused, and AUTH is offered in
    plaintext (``auth_require_tls=False``): a client that falls back would log in in clear.
    """

    refuse_starttls: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.handler.auth_attempts = []  # type: ignore[attr-defined]

    def _factory(self):
        recorder = self.handler
        server = _AuthWatchSMTP(
            recorder,
            hostname="smtp.test",
            ident="dispatch test server",
            tls_context=self.starttls,  # type: ignore[arg-type]
            require_starttls=self.starttls is not None and not self.refuse_starttls,
            authenticator=recorder.authenticate if recorder.auth else None,
            auth_require_tls=self.auth_require_tls,
            loop=self._loop,
        )
        server.refuse_starttls = self.refuse_starttls
        return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plan", required=True, help="the FaultPlan as JSON")
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    serve(FaultPlan(**json.loads(options.plan)), options.log, options.port)


if __name__ == "__main__":
    main()
