"""Crash safety of what dispatch writes: builds, exports and dry runs, and the send journal.

Failures are real, not mocked: a write that fails is a child process whose file
size limit (RLIMIT_FSIZE, as on a full disk) stops it mid-build; a crash is a
SIGKILL at a random moment. The journal must come back from any of them whole
and truthful, and a journal that is damaged, foreign or someone else's must be
refused in one line rather than resumed wrongly.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatch_mail.delivery.journal import STATES, Journal
from dispatch_mail.errors import JournalError
from tests.helpers.project import Project
from tests.helpers.send import dispatch_env, invoke, recipients, run, send_args, spawn
from tests.helpers.smtp_server import SmtpServer

OUTPUTS = ("email.html", "email.txt", "email.mjml", "email.eml")
SEED = int(os.environ.get("CRASH_SEED", "7"))


def dispatch_limited(
    args: list[str], cwd: Path, max_file_bytes: int
) -> subprocess.CompletedProcess:
    """`dispatch ARGS` in a process that cannot write past ``max_file_bytes`` (EFBIG, disk full)."""
    boot = (
        "import os, resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({max_file_bytes}, {max_file_bytes}))\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'dispatch_mail.cli', *sys.argv[1:]])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", boot, *args],
        cwd=cwd,
        env=dispatch_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def temp_files(folder: Path) -> list[str]:
    return sorted(
        p.name
        for p in folder.rglob("*")
        if (p.name.startswith(".") or p.name.endswith((".tmp", ".lock")))
        and p.relative_to(folder).parts[0] != ".dispatch"  # the suppression store's folder
    )


# ------------------------------------------------------------------ builds
@pytest.fixture
def built(project: Project) -> tuple[Project, Path, dict[str, bytes]]:
    """A project built once (version A); the manifest then says something else (version B)."""
    result = invoke("build", str(project.issue_dir))
    assert result.exit_code == 0, result.output
    out = project.root / "build" / "one"
    before = snapshot(out)
    assert set(before) == set(OUTPUTS)
    project.change_content("Example 3.0 is out, with **even faster** start-up and a new logo.")
    return project, out, before


def limit_between(before: dict[str, bytes]) -> int:
    """A file size limit that lets email.html, .txt and .mjml through, not email.eml (last)."""
    small = max(len(before[n]) for n in OUTPUTS[:3])
    assert len(before["email.eml"]) > small + 2000, "email.eml must be the largest for this test"
    return (small + 1000 + len(before["email.eml"])) // 2


def test_a_build_refused_for_its_content_leaves_the_previous_build_byte_identical(built):
    project, out, before = built
    (project.issue_dir / "issue.yaml").write_text("subject: [unclosed\n", encoding="utf-8")
    result = invoke("build", str(project.issue_dir))
    assert result.exit_code == 1 and "nothing was written" in result.output
    assert snapshot(out) == before
    assert temp_files(project.root) == []


def test_a_build_that_fails_writing_leaves_every_file_whole_and_no_temp_files(built):
    project, out, before = built
    result = dispatch_limited(
        ["build", str(project.issue_dir)], project.root, limit_between(before)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "File too large" in result.stderr and "Traceback" not in result.stderr
    assert temp_files(project.root) == [], "the temp file of the write that failed is removed"
    assert invoke("build", str(project.issue_dir), "--out", str(project.root / "b")).exit_code == 0
    new = snapshot(project.root / "b")
    for name, data in snapshot(out).items():  # each file is one version or the other, whole
        assert data in (before[name], new[name]) or name == "email.eml" and _whole_eml(data), name


def test_a_build_that_fails_writing_leaves_the_previous_build_byte_identical(built):
    project, out, before = built
    result = dispatch_limited(
        ["build", str(project.issue_dir)], project.root, limit_between(before)
    )
    assert result.returncode == 1
    assert snapshot(out) == before


def _whole_eml(data: bytes) -> bool:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    parts = [p.get_content_type() for p in msg.walk()]
    return parts == ["multipart/alternative", "text/plain", "text/html"] and data.rstrip().endswith(
        b"--"
    )


BUILD_LOOP = """
import sys
from pathlib import Path
from dispatch_mail.publish.build import build_issue
issues = [Path(p) for p in sys.argv[2:]]
out = Path(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    build_issue(issues[n % 2], out)
    n += 1
"""


def test_builds_killed_at_random_moments_leave_every_file_whole(tmp_path):
    """Two issues built in turn into one folder, SIGKILLed at random moments: each A's or B's."""
    rng = random.Random(SEED)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = (
        Project(tmp_path / "a"),
        Project(tmp_path / "b", item="Something **else** entirely, and longer " * 3),
    )
    versions = []
    for p in (a, b):
        assert (
            invoke(
                "build", str(p.issue_dir), "--out", str(tmp_path / f"ref-{p.root.name}")
            ).exit_code
            == 0
        )
        versions.append(snapshot(tmp_path / f"ref-{p.root.name}"))
    out = tmp_path / "out"
    leftovers: set[str] = set()
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", BUILD_LOOP, str(out), str(a.issue_dir), str(b.issue_dir)],
            cwd=tmp_path,
            env=dispatch_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.01, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        if not out.exists():
            continue
        for name, data in snapshot(out).items():
            if name.startswith("."):
                leftovers.add(
                    name
                )  # a temp file the kill interrupted: never under an output's own name
                assert (
                    name.endswith(".tmp") and name[1:].split(".tmp")[0].rsplit(".", 1)[0] in OUTPUTS
                ), name
                continue
            if name == "email.eml":  # its Date and Message-ID change with each build
                assert _whole_eml(data), "email.eml is cut short"
            else:
                assert data in (versions[0][name], versions[1][name]), f"{name} is neither version"
    assert (out / "email.html").exists()
    print(
        f"\n[builds] 12 SIGKILLs mid-build: every output whole; "
        f"{len(leftovers)} temp file(s) left behind by the kills"
    )


@pytest.mark.parametrize("fmt", ["eml", "html", "zip", "mbox"])
def test_an_export_that_fails_writing_leaves_the_previous_export_and_no_temp_files(built, fmt):
    project, out, _ = built
    project.change_content("Example 2.0 is out, with **faster** start-up.")  # back to version A
    target = out / f"export.{fmt}"
    assert invoke("export", str(project.issue_dir), "--format", fmt).exit_code == 0
    previous = target.read_bytes()
    project.change_content("Version B is longer. " * 45)
    result = dispatch_limited(
        ["export", str(project.issue_dir), "--format", fmt], project.root, len(previous) // 2
    )
    assert result.returncode == 1 and "File too large" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert target.read_bytes() == previous
    assert temp_files(project.root) == []


def test_a_dry_run_that_fails_writing_leaves_no_half_written_mbox(project):
    path = project.csv(recipients(30))
    out = project.root / "dry.mbox"
    assert invoke(*send_args(project, None, path, "--dry-run", str(out))).exit_code == 0
    previous = out.read_bytes()
    result = dispatch_limited(
        send_args(project, None, path, "--dry-run", str(out)), project.root, len(previous) // 2
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot write the dry run to ") and line.endswith(
        "dry.mbox: File too large"
    )
    assert out.read_bytes() == previous
    assert temp_files(project.root) == []


# ------------------------------------------------------------------ the journal under SIGKILL
JOURNAL_LOOP = """
import random, sys, time
from pathlib import Path
from dispatch_mail.delivery.audience import Exclusion, Recipient
from dispatch_mail.delivery.journal import Journal

path, seed, n = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
say = lambda *parts: (sys.stdout.write(" ".join(map(str, parts)) + "\\n"), sys.stdout.flush())
journal = Journal.open(path)
journal.bind("one", "hash")
say("adding")
addresses = [f"r{i:05d}@example.com" for i in range(n)]
people = [Recipient(a, {"email": a, "name": f"R {i}"}) for i, a in enumerate(addresses)]
bad = [Exclusion("list.csv", n + 2 + i, f"bad{i}", "invalid: x") for i in range(50)]
journal.add(people + bad, "example.org", "one")
say("added")
for row in journal.recover(resend=True):
    say(row.id, "pending")
while True:
    batch = journal.next_batch(0, 100)
    if not batch:
        say("done")
        time.sleep(10)
    for row in batch:
        journal.mark_sending(row.id)
        say(row.id, "sending")  # printed once committed: the journal must keep it
        r = rng.random()
        if r < 0.8:
            journal.mark_sent(row.id, 250, "2.0.0 OK")
            say(row.id, "sent")
        elif r < 0.9:
            journal.mark_retry(row.id, 451, "rcpt: 451 later", 0.0)
            say(row.id, "pending")
        else:
            journal.mark_failed(row.id, 550, "rcpt: 550 no such user")
            say(row.id, "failed")
"""


def test_the_journal_survives_sigkill_at_any_moment(tmp_path):
    """A process changing the journal as fast as it can is SIGKILLed again and again.

    After each kill the journal opens, passes SQLite's integrity check, holds only valid
    rows, and keeps every change it reported as done (committed before it printed it).
    """
    rng = random.Random(SEED)
    path, n = tmp_path / "send.journal", 6000
    reported: dict[int, str] = {}
    kills = during_add = 0
    for round_ in range(24):
        proc = subprocess.Popen(
            [sys.executable, "-c", JOURNAL_LOOP, str(path), str(round_), str(n)],
            cwd=tmp_path,
            env=dispatch_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = proc.stdout.readline()
        assert first == "adding\n", first + proc.stderr.read()
        time.sleep(
            rng.uniform(0, 0.06) if round_ < 4 else rng.uniform(0.05, 0.35)
        )  # the first ones during add()
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        kills += 1
        lines = out.splitlines()
        during_add += "added" not in lines
        last_touched = None
        for line in lines:
            parts = line.split()
            if len(parts) == 2:
                reported[int(parts[0])] = parts[1]
                last_touched = int(parts[0])
        found = _check_journal(path, n, reported, last_touched)
        if last_touched is not None:
            reported[last_touched] = found[
                last_touched
            ]  # what the kill left it in is now the truth
    assert during_add >= 1, "no kill landed while the list was being added"
    print(
        f"\n[journal] {kills} SIGKILLs ({during_add} during add()): intact every time, "
        f"{sum(1 for s in reported.values() if s == 'sent')} rows reported sent, all kept"
    )


def _check_journal(
    path: Path, n: int, reported: dict[int, str], last_touched: int | None
) -> dict[int, str]:
    with Journal.open(path) as journal:  # raises JournalError if damaged
        assert journal.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = journal.conn.execute(
            "SELECT id, state, attempts, last_code, sent_at, uncertain FROM recipients"
        ).fetchall()
        excluded = journal.conn.execute("SELECT COUNT(*) FROM exclusions").fetchone()[0]
        counts = journal.counts()
    assert (len(rows), excluded) in ((0, 0), (n, 50)), "add() is all or nothing"
    assert sum(counts.values()) == len(rows)
    states = {state for _, state, *_ in rows}
    assert states <= set(STATES)
    assert counts["sending"] <= 1, "one change at a time: at most one row in flight"
    by_id = {r[0]: r for r in rows}
    for _, state, attempts, code, sent_at, _ in rows:
        if state == "sent":
            assert code == 250 and sent_at is not None and attempts >= 1
        if state == "failed":
            assert code == 550 and attempts >= 1
    for id_, said in reported.items():
        found = by_id[id_][1]
        if found == said or id_ == last_touched:
            continue  # the row in hand at the kill may be one step further than it could say
        # a row left in flight by an earlier kill is put back by recover() before anything is said
        assert said == "sending" and found == "pending" and by_id[id_][5] == 1, (id_, said, found)
    return {id_: r[1] for id_, r in by_id.items()}


# ------------------------------------------------------------------ damaged and foreign journals
@pytest.fixture
def finished(project: Project, server: SmtpServer) -> tuple[Project, SmtpServer, list[str], bytes]:
    """A journal of a finished send of 300 (closed cleanly: no -wal beside it)."""
    args = send_args(project, server, project.csv(recipients(300)))
    assert invoke(*args).exit_code == 0
    assert server.handler.count() == 300
    server.handler.received.clear()
    server.handler.connections = 0
    return project, server, args, project.journal.read_bytes()


def _corrupt(kind: str, data: bytes, project: Project) -> bytes:
    rng = random.Random(kind)
    middle = len(data) // 2 // 4096 * 4096
    if kind == "truncated to half":
        return data[: len(data) // 2]
    if kind == "truncated to 100 bytes":
        return data[:100]
    if kind == "truncated to one page":
        return data[:4096]
    if kind == "garbage over pages in the middle":
        return data[:middle] + rng.randbytes(8192) + data[middle + 8192 :]
    if kind == "garbage over a few bytes of a b-tree page header":
        return data[:middle] + b"\xff" * 12 + data[middle + 12 :]
    if kind == "not an SQLite file":
        return b"email,state\nr00000@example.com,sent\n" * 100
    if kind == "the application id overwritten":
        return data[:68] + b"\x00\x00\x00\x00" + data[72:]
    if kind == "another application's SQLite file":
        other = project.root / "other.db"
        with sqlite3.connect(other) as conn:
            conn.execute("CREATE TABLE recipients (email TEXT, state TEXT)")
            conn.executemany(
                "INSERT INTO recipients VALUES (?, 'pending')", [(e,) for e, _ in recipients(300)]
            )
        conn.close()
        return other.read_bytes()
    raise AssertionError(kind)


CORRUPTIONS = {
    "truncated to half": "the journal is damaged",
    "truncated to 100 bytes": "the journal is damaged",
    "truncated to one page": "the journal is damaged",
    "garbage over pages in the middle": "the journal is damaged",
    "garbage over a few bytes of a b-tree page header": "the journal is damaged",
    "not an SQLite file": "not a dispatch journal (not an SQLite file)",
    "the application id overwritten": "an SQLite file that is not a dispatch journal",
    "another application's SQLite file": "an SQLite file that is not a dispatch journal",
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_damaged_or_foreign_journal_is_refused_in_one_line(finished, kind):
    project, server, args, good = finished
    bad = _corrupt(kind, good, project)
    project.journal.write_bytes(bad)
    for command in (args, ["status", str(project.issue_dir), "--journal", str(project.journal)]):
        result = invoke(*command)
        assert result.exit_code == 1, (kind, result.output)
        lines = result.stderr.splitlines()
        assert (
            len(lines) == 1 and lines[0].startswith("error: ") and CORRUPTIONS[kind] in lines[0]
        ), (kind, lines)
        assert lines[0].endswith("; refusing to resume from it"), lines
        assert result.stdout == ""
    assert server.handler.connections == 0, "a bad journal is refused before any connection"
    assert project.journal.read_bytes() == bad, "left exactly as found"


def test_a_journal_of_another_issue_is_refused(finished, tmp_path):
    project, server, args, good = finished
    (tmp_path / "other").mkdir()
    other = Project(tmp_path / "other", subject="Another issue")
    (other.root / "issues" / "one").rename(other.root / "issues" / "two")
    result = invoke("send", str(other.root / "issues" / "two"), *args[2:])
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and line.endswith(
        "send.journal: this journal belongs to issue 'one', not 'two'"
    )
    assert server.handler.count() == 0 and project.journal.read_bytes() == good


def test_truncated_anywhere_a_journal_is_refused_or_read_exactly(finished, tmp_path):
    """Cut at every page boundary and at random bytes: no journal opens with other rows."""
    project, _, _, good = finished
    with Journal.open(project.journal) as journal:
        truth = list(journal.rows())
    rng = random.Random(SEED)
    cuts = list(range(4096, len(good), 4096)) + [rng.randrange(1, len(good)) for _ in range(40)]
    refused = read_back = 0
    for cut in cuts:
        path = tmp_path / f"cut-{cut}.journal"
        path.write_bytes(good[:cut])
        try:
            with Journal.open(path) as journal:
                assert list(journal.rows()) == truth, f"cut at {cut}: opened with other contents"
                read_back += 1
        except JournalError:
            refused += 1
    assert (
        refused >= len(cuts) - 10
    )  # only a cut inside the free space at the very end can read back whole
    print(
        f"\n[journal] {len(cuts)} truncations: {refused} refused, "
        f"{read_back} read back unchanged, 0 wrong"
    )


def test_a_journal_killed_mid_send_resumes_from_its_wal(project, server):
    """The WAL a SIGKILL leaves holds the last commits: the next run reads them: none twice."""
    server.handler.delay = 0.01
    args = send_args(project, server, project.csv(recipients(200)), "--concurrency", "2")
    proc = spawn(args, project.root)
    assert server.handler.wait_for(40, timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert Path(f"{project.journal}-wal").exists()
    server.handler.delay = 0
    finished = run(args, project.root)
    assert finished.returncode == 0, finished.stderr
    copies = server.handler.per_recipient()
    assert set(copies) == {e for e, _ in recipients(200)} and sum(copies.values()) - 200 <= 2
