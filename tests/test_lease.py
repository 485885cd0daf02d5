"""One send at a time per journal: two real `dispatch send` processes, and leases left behind.

The server runs in a thread of the test process and counts what really arrived,
per address: nobody may get the issue twice, whatever the two processes do.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatch_mail.delivery import campaign
from dispatch_mail.delivery.engine import SendOptions
from dispatch_mail.delivery.journal import Holder, Journal
from dispatch_mail.delivery.journal.lease import LEASE_KEY
from dispatch_mail.delivery.session import ListSend
from dispatch_mail.delivery.smtp import SmtpSettings
from dispatch_mail.errors import JournalBusy
from tests.helpers.project import REPO
from tests.helpers.send import recipients, run, send_args, spawn, wait_until

N = 2000
CONCURRENCY = 4
HOST = socket.gethostname()


def everyone(n: int = N) -> set[str]:
    return {email for email, _ in recipients(n)}


def lease_row(journal: Path) -> dict[str, object] | None:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (LEASE_KEY,)).fetchone()
    conn.close()
    return json.loads(row[0]) if row else None


def put_lease(journal: Path, holder: Holder) -> None:
    with sqlite3.connect(journal) as conn:
        conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (LEASE_KEY, holder.to_json()),
        )
    conn.close()


def counts(journal: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
        found = dict(conn.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state"))
    conn.close()
    return found


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"dispatch did not finish in {timeout}s\n{out}\n{err}") from None


def busy_line(stderr: str, pid: int, host: str = HOST) -> str:
    """The refusal: one line, naming the holder's pid, host and start."""
    (line,) = stderr.strip().splitlines()
    assert line.startswith("error: ") and "another send holds this journal" in line, line
    assert f"pid {pid} on {host}, since " in line, line
    assert "damaged" not in line and "internal error" not in line
    return line


# ------------------------------------------------------------------ two real sends
def test_a_second_send_while_the_first_runs_is_refused_and_nobody_gets_it_twice(project, server):
    server.handler.delay = 0.01  # 4 connections: the first send takes 5 s at the very least
    args = send_args(project, server, project.csv(recipients(N)), "--concurrency", "4")
    first = spawn(args, project.root)
    try:
        assert server.handler.wait_for(100, timeout=60), "the first send never got going"
        second = run(args, project.root, timeout=60)
    finally:
        out, err = finish(first)
    assert second.returncode == 2, second.stderr
    busy_line(second.stderr, first.pid)
    assert second.stdout == "", "refused before any plan is shown"

    assert first.returncode == 0, err
    assert "2,000 of 2,000 reached in all" in out
    assert server.handler.per_recipient() == dict.fromkeys(everyone(), 1)
    assert counts(project.journal) == {"sent": N}
    assert lease_row(project.journal) is None, "the first gave its lease back at the end"


def test_two_sends_started_at_the_same_instant_on_a_new_journal_send_once(project, server):
    server.handler.delay = 0.01
    args = send_args(project, server, project.csv(recipients(N)), "--concurrency", "4")
    assert not project.journal.exists()
    procs = [spawn(args, project.root), spawn(args, project.root)]
    results = [(proc, *finish(proc)) for proc in procs]
    codes = sorted(proc.returncode for proc, _, _ in results)
    assert codes == [0, 2], [(p.returncode, err) for p, _, err in results]
    (winner,) = [proc for proc, _, _ in results if proc.returncode == 0]
    (_, _, refused) = next(r for r in results if r[0].returncode == 2)
    busy_line(refused, winner.pid)
    for _, _, err in results:
        assert "damaged" not in err and "internal error" not in err
    assert server.handler.per_recipient() == dict.fromkeys(everyone(), 1)
    assert counts(project.journal) == {"sent": N}


CREATE = """
import sys, time
from pathlib import Path
from dispatch_mail.delivery.journal import Journal
from dispatch_mail.errors import DispatchError
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # everyone starts at the same moment
try:
    with Journal.open(Path(sys.argv[1])) as journal:
        journal.bind("one", "hash")
except DispatchError as exc:
    print(exc)
    sys.exit(1)
"""


def test_a_journal_created_by_many_processes_at_once_is_created_once_and_whole(tmp_path):
    """Journal creation itself, under a tighter race than two sends make: eight at once."""
    for round_ in range(5):
        path = tmp_path / f"race-{round_}.journal"
        start = time.time() + 1.5
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CREATE, str(path), str(start)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(8)
        ]
        outputs = [finish(proc, 60)[0] for proc in procs]
        assert [p.returncode for p in procs] == [0] * 8, outputs
        with Journal.read(path) as journal:
            assert journal.get_meta("issue") == "one"
            assert journal.counts()["pending"] == 0


# ------------------------------------------------------------------ a lease left behind
def test_a_sigkilled_senders_lease_is_taken_over_and_its_messages_in_flight_recovered(
    project, server
):
    server.handler.delay = 0.02  # every connection is in DATA most of the time
    args = send_args(project, server, project.csv(recipients(300)), "--concurrency", "4")
    proc = spawn(args, project.root)
    try:
        assert server.handler.wait_for(40, timeout=60)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    left = lease_row(project.journal)
    assert left is not None and left["pid"] == proc.pid and left["host"] == HOST
    in_flight = counts(project.journal).get("sending", 0)
    assert 1 <= in_flight <= CONCURRENCY
    server.handler.delay = 0

    resumed = run(args, project.root)
    assert resumed.returncode == 0, resumed.stderr
    assert f"in flight:    {in_flight} were in flight when the last run stopped" in resumed.stdout
    copies = server.handler.per_recipient()
    assert set(copies) == everyone(300)
    assert sum(n - 1 for n in copies.values()) <= in_flight
    assert counts(project.journal) == {"sent": 300}
    assert lease_row(project.journal) is None


def started_at(pid: int) -> str:
    """The process's start time as the kernel counts it (what a lease records)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2 :].split()[19]


def holder(pid: int, host: str = HOST, *, started: str = "", heartbeat_age: float = 0) -> Holder:
    now = time.time()
    boot_id = Path("/proc/sys/kernel/random/boot_id")
    boot = boot_id.read_text().strip() if boot_id.exists() else ""
    return Holder(pid, host, boot, started, now - 600, now - heartbeat_age, "f00d")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_lease_is_respected_while_its_process_lives_and_only_then(project, server):
    path = project.csv(recipients(5))
    args = send_args(project, server, path)
    assert run([*args, "--max-per-hour", "1"], project.root).returncode == 0  # the journal exists
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        put_lease(project.journal, holder(sleeper.pid, started=started_at(sleeper.pid)))
        refused = run(args, project.root)
        assert refused.returncode == 2
        busy_line(refused.stderr, sleeper.pid)

        # the same pid, another process's start time: the pid was reused, the holder is gone
        put_lease(project.journal, holder(sleeper.pid, started="1"))
        taken = run([*args, "--max-per-hour", "2"], project.root)
        assert taken.returncode == 0, taken.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    put_lease(project.journal, holder(sleeper.pid, started=""))  # dead and reaped
    finished = run(args, project.root)
    assert finished.returncode == 0, finished.stderr
    assert server.handler.per_recipient() == dict.fromkeys(everyone(5), 1)


def test_a_lease_from_another_host_is_respected_until_its_heartbeat_is_stale(project, server):
    path = project.csv(recipients(5))
    args = send_args(project, server, path)
    assert run([*args, "--max-per-hour", "1"], project.root).returncode == 0
    put_lease(project.journal, holder(4242, "elsewhere.example", heartbeat_age=5))
    refused = run(args, project.root)
    assert refused.returncode == 2
    busy_line(refused.stderr, 4242, "elsewhere.example")
    assert re.search(r"\(last heartbeat \d+ s ago\); nothing was sent$", refused.stderr.strip())
    assert server.handler.count() == 1

    put_lease(project.journal, holder(4242, "elsewhere.example", heartbeat_age=120))
    taken = run(args, project.root)
    assert taken.returncode == 0, taken.stderr
    assert server.handler.per_recipient() == dict.fromkeys(everyone(5), 1)


# ------------------------------------------------------------------ the heartbeat, in process
def test_the_heartbeat_refreshes_the_lease_and_a_send_that_lost_it_stops(project, server):
    server.handler.delay = 0.01
    prepared = campaign.prepare(project.issue_dir)
    settings = SmtpSettings("127.0.0.1", server.port, tls="none", timeout=5)
    options = SendOptions(concurrency=2, retry_base=0.02)
    csv_path = str(project.csv(recipients(400)))
    with ListSend(
        prepared, csv_path, settings, options, journal_path=project.journal, lease_stale_after=0.4
    ) as list_send:
        first = lease_row(project.journal)
        assert first is not None and first["pid"] == os.getpid()
        assert wait_until(lambda: beat_of(project.journal) > float(str(first["heartbeat"])))

        # meanwhile a send on another host judged the lease stale and took it over
        thief = holder(4242, "elsewhere.example")
        put_lease(project.journal, thief)
        outcome = list_send.run()
    assert outcome.exit_code == 2
    assert outcome.error is not None and "took this journal over" in outcome.error
    assert "pid 4242 on elsewhere.example" in outcome.error
    assert lease_row(project.journal) == json.loads(thief.to_json()), "the thief's lease is kept"
    sent = counts(project.journal).get("sent", 0)
    assert sent < 400, "the send stopped"
    assert max(server.handler.per_recipient().values(), default=1) == 1


def beat_of(journal: Path) -> float:
    row = lease_row(journal)
    return float(str(row["heartbeat"])) if row else 0.0


def test_a_second_list_send_in_the_same_process_is_refused_too(project, server):
    prepared = campaign.prepare(project.issue_dir)
    settings = SmtpSettings("127.0.0.1", server.port, tls="none", timeout=5)
    csv_path = str(project.csv(recipients(3)))
    with ListSend(prepared, csv_path, settings, SendOptions(), journal_path=project.journal):
        with pytest.raises(JournalBusy) as busy:
            ListSend(prepared, csv_path, settings, SendOptions(), journal_path=project.journal)
    assert busy.value.exit_code == 2 and busy.value.host == HOST
    assert "--" not in str(busy.value), "the library names no options"


# ------------------------------------------------------------------ status while a send runs
def test_status_reads_a_journal_while_a_send_runs_and_changes_nothing_of_it(project, server):
    server.handler.delay = 0.01
    args = send_args(project, server, project.csv(recipients(N)), "--concurrency", "4")
    proc = spawn(args, project.root)
    try:
        assert server.handler.wait_for(100, timeout=60)
        status = run(
            ["status", str(project.issue_dir), "--journal", str(project.journal)], project.root
        )
        as_json = run(
            [
                "status",
                str(project.issue_dir),
                "--journal",
                str(project.journal),
                "--format",
                "json",
            ],
            project.root,
        )
        lease = lease_row(project.journal)
        running = proc.poll() is None
    finally:
        out, err = finish(proc)
    assert running
    assert status.returncode == 0, status.stderr
    assert f"/{N:,} sent, " in status.stdout and " in flight" in status.stdout
    assert f"  sending now:  pid {proc.pid} on {HOST}, since " in status.stdout
    (entry,) = json.loads(as_json.stdout)
    assert entry["sending_now"].startswith(f"pid {proc.pid} on {HOST}")
    assert lease is not None and lease["pid"] == proc.pid, "status took no lease"
    assert proc.returncode == 0, err
    assert server.handler.per_recipient() == dict.fromkeys(everyone(), 1)

    after = run(["status", str(project.issue_dir), "--journal", str(project.journal)], project.root)
    assert f"{N:,}/{N:,} sent" in after.stdout and "sending now" not in after.stdout
