"""The soak: a real ``dispatch send`` through the fault server, SIGKILLed at random moments.

:class:`Soak` runs the real ``dispatch send`` as a subprocess against the fault
server (faultserver.py), SIGKILLs it at random moments, restarts it until it
finishes, and then checks the server's log against the send journal
(tests/test_soak.py at 2,000 recipients, benchmarks/soak.py at 100,000).
"""

from __future__ import annotations

import collections
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.faultserver import KINDS, EventLog, FaultPlan, FaultServerProcess
from tests.helpers.project import Project
from tests.helpers.send import dispatch_env
from tests.helpers.smtp_server import HOST

SECRET = "soak-unsubscribe-secret-0123456789"


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
            f"soak: {self.recipients:,} recipients, seed {self.seed}, "
            f"concurrency {self.concurrency}, "
            f"{self.seconds:.1f}s, {self.rounds} runs; faults: {faults}; "
            f"crashes {len(self.crashes)} ({in_flight} in flight); "
            f"duplicates {self.duplicates} ({self.duplicates_crash} crash, "
            f"{self.duplicates_drop} post-DATA drop; "
            f"{self.reported_uncertain} flagged possible); "
            f"reached {self.reached:,}/{self.deliverable:,}; "
            f"failed {self.journal.get('failed', 0):,} (550 set {self.permanent:,}); "
            f"lost: {self.lost}"
        )


def write_project(root: Path) -> Path:
    """A small newsletter project (the send tests' own); returns the issue folder."""
    return Project(root).issue_dir


def write_list(path: Path, n: int) -> list[str]:
    emails = [f"r{i:06d}@example.com" for i in range(n)]
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,name\n")
        for i, email in enumerate(emails):
            handle.write(f"{email},Reader {i}\n")
    return emails


class Soak:
    """`dispatch send` through the fault server, SIGKILLed ``crashes`` times, until it is done."""

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
        log: Callable[[str], object] | None = None,
    ) -> None:
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
        return dispatch_env(DISPATCH_UNSUBSCRIBE_SECRET=SECRET)

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
                    f"run {result.rounds} exited {code} with {open_rows} open; "
                    f"running again: {stderr.strip()[-300:]}"
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
        """One `dispatch send`, SIGKILLed at a random moment while crashes remain.

        Returns (killed|hung|exited, exit status, stderr).
        """
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
                            f"run {result.rounds} still running after "
                            f"{deadline - began:.0f}s: killed"
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
                    f"crash in run {crash.round}: {len(crash.in_flight)} in flight "
                    f"> concurrency {self.concurrency}"
                )
            in_flight_any.update(crash.in_flight)
        for address, got in copies.items():
            ids = {message_id for _, message_id in got}
            if address in rows and ids != {rows[address]["message_id"]}:
                problems.append(
                    f"{address}: Message-ID(s) {sorted(ids)} differ from the journal's "
                    f"{rows[address]['message_id']}"
                )
            if len(got) < 2:
                continue
            drops = sum(1 for kind, _ in got if kind == "drop")
            crashes = sum(1 for c in result.crashes if address in c.in_flight)
            if len(got) - 1 > drops + crashes:
                problems.append(
                    f"{address}: {len(got)} copies, only {drops} post-DATA drop(s) "
                    f"and {crashes} crash(es) explain them"
                )
            if not rows.get(address, {}).get("uncertain"):
                problems.append(
                    f"{address}: {len(got)} copies but the journal does not flag it "
                    "as possibly duplicated"
                )
            from_drops = min(
                drops, len(got) - 1
            )  # a copy the server kept before dropping explains one extra
            result.duplicates_drop += from_drops
            result.duplicates_crash += len(got) - 1 - from_drops
        if result.duplicates_crash > self.concurrency * len(result.crashes):
            problems.append(
                f"{result.duplicates_crash} crash duplicates > concurrency × crashes = "
                f"{self.concurrency * len(result.crashes)}"
            )

        sent = {e for e, r in rows.items() if r["state"] == "sent"}
        if sent != set(copies):
            problems.append(
                f"journal sent ≠ server accepted: {len(sent - set(copies))} sent "
                f"but not at the server ({sorted(sent - set(copies))[:3]}), "
                f"{len(set(copies) - sent)} at the server but not sent "
                f"({sorted(set(copies) - sent)[:3]})"
            )
        failed = {e for e, r in rows.items() if r["state"] == "failed"}
        if failed != permanent:
            extra = sorted(failed - permanent)[:3]
            problems.append(
                f"failed ≠ the 550 set: {len(failed - permanent)} others failed "
                f"({[(e, rows[e]['last_reply']) for e in extra]}), "
                f"{len(permanent - failed)} of the set not failed"
            )
        for address in sorted(permanent & failed):
            row = rows[address]
            if row["last_code"] != 550 or "550 5.1.1" not in (row["last_reply"] or ""):
                problems.append(
                    f"{address}: failed without the server's 550 reply "
                    f"({row['last_code']} {row['last_reply']!r})"
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


def journal_all(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        found = [
            dict(r)
            for r in conn.execute(
                "SELECT email, state, last_code, last_reply, message_id, uncertain, attempts"
                " FROM recipients"
            )
        ]
    conn.close()
    return found
