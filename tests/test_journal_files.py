"""The journal's file under real trouble: a full disk, read-only files and folders, odd files.

Every failure a user can cause is one clear line and a non-zero exit, never an
``internal error``; the journal stays consistent and resumes; and ``dispatch
status`` never changes a file it only reads. The disks are real: a small tmpfs
(when the tests run as root) and a file-size limit (RLIMIT_FSIZE, anywhere);
read-only means a read-only bind mount as root, file modes otherwise.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dispatch_mail.delivery.journal import Journal
from tests.helpers.project import Project
from tests.helpers.send import dispatch_env, recipients, run, send_args
from tests.helpers.smtp_server import SmtpServer

N = 2000
CONCURRENCY = 4


# ------------------------------------------------------------------ real small disks, real modes
def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``folder`` (root only: skipped elsewhere)."""
    folder.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("a tmpfs needs root (the file-size-limit test covers the full disk)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (a file or a folder) read-only for dispatch: a bind mount as root, modes else."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    try:
        _mount("--bind", str(path), str(path))
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("root without mount: a file cannot be made read-only for root")
    try:
        _mount("-o", "remount,ro,bind", str(path))
        yield
    finally:
        subprocess.run(["umount", str(path)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    filler = disk / "filler"
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def run_limited(args: list[str], cwd: Path, max_file_size: int) -> subprocess.CompletedProcess[str]:
    """``dispatch`` with no file allowed to grow past ``max_file_size`` (EFBIG, as a full quota)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, max_file_size))

    return subprocess.run(
        [sys.executable, "-m", "dispatch_mail.cli", *args],
        cwd=cwd,
        env=dispatch_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )


def error_line(stderr: str) -> str:
    """The one error line of a failed run (a resume hint may follow it)."""
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert all(line.startswith(("error: ", "resume with: ")) for line in stderr.splitlines())
    return errors[0]


def consistent(journal: Path, total: int) -> dict[str, int]:
    """The journal opens (integrity_check passes), every row is there, few are in flight."""
    with Journal.read(journal) as opened:
        counts = opened.counts()
    assert sum(counts.values()) == total
    assert counts["sending"] <= CONCURRENCY
    return counts


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# ------------------------------------------------------------------ a full disk
def test_a_disk_that_fills_during_a_send_stops_it_in_one_line_and_it_resumes(
    project, server, tmp_path
):
    with small_disk(tmp_path / "disk", "8m") as disk:
        journal = disk / "send.journal"
        args = send_args(
            project,
            server,
            project.csv(recipients(N)),
            "--concurrency",
            str(CONCURRENCY),
            "--journal",
            str(journal),
        )
        started = run([*args, "--max-per-hour", "10"], project.root)  # the list is in the journal
        assert started.returncode == 0, started.stderr
        filler = fill(disk, leave=60_000)

        full = run(args, project.root)
        assert full.returncode == 1, full.stdout + full.stderr
        line = error_line(full.stderr)
        assert "cannot write the journal: the disk is full" in line
        assert "resume with: " in full.stderr
        received = server.handler.count()
        assert 10 <= received < N
        consistent(journal, N)

        filler.unlink()
        resumed = run(args, project.root)
        assert resumed.returncode == 0, resumed.stderr
    copies = server.handler.per_recipient()
    assert set(copies) == {email for email, _ in recipients(N)}
    assert sum(n - 1 for n in copies.values()) <= CONCURRENCY, "only messages in flight twice"


def test_a_file_size_limit_during_a_send_stops_it_in_one_line_and_it_resumes(project, server):
    args = send_args(project, server, project.csv(recipients(N)), "--concurrency", str(CONCURRENCY))
    assert run([*args, "--max-per-hour", "10"], project.root).returncode == 0
    limited = run_limited(args, project.root, max_file_size=64 * 1024)  # the -wal cannot grow
    assert limited.returncode == 1, limited.stdout + limited.stderr
    line = error_line(limited.stderr)
    assert "cannot write the journal: the disk refused a write" in line
    assert 10 <= server.handler.count() < N
    consistent(project.journal, N)

    resumed = run(args, project.root)
    assert resumed.returncode == 0, resumed.stderr
    copies = server.handler.per_recipient()
    assert set(copies) == {email for email, _ in recipients(N)}
    assert sum(n - 1 for n in copies.values()) <= CONCURRENCY


def test_a_disk_too_small_for_the_list_is_one_line_and_nothing_is_sent(project, server, tmp_path):
    with small_disk(tmp_path / "disk", "128k") as disk:
        args = send_args(
            project, server, project.csv(recipients(N)), "--journal", str(disk / "send.journal")
        )
        result = run(args, project.root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the disk is full" in error_line(result.stderr)
    assert server.handler.connections == 0


# ------------------------------------------------------------------ read-only
@pytest.fixture
def half_sent(project: Project, server: SmtpServer, tmp_path: Path) -> tuple[Path, list[str]]:
    """A journal in a folder of its own, 10 of 20 sent; and the args that resume it."""
    folder = tmp_path / "journals"
    folder.mkdir()
    journal = folder / "send.journal"
    args = send_args(project, server, project.csv(recipients(20)), "--journal", str(journal))
    assert run([*args, "--max-per-hour", "10"], project.root).returncode == 0
    assert not journal.with_name("send.journal-wal").exists(), "closed cleanly"
    return journal, args


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_journal_is_named_so_not_damaged_and_status_still_reads_it(
    project, server, half_sent, what
):
    journal, args = half_sent
    before = snapshot(journal)
    with read_only(journal if what == "file" else journal.parent):
        refused = run(args, project.root)
        status = run(["status", str(project.issue_dir), "--journal", str(journal)], project.root)
    assert refused.returncode == 1
    line = error_line(refused.stderr)
    assert "damaged" not in line
    assert "read-only (not writable)" in line or "folder is not writable" in line, line
    assert server.handler.count() == 10, "nothing more was sent"
    assert status.returncode == 0, status.stderr
    assert "10/20 sent, 10 pending" in status.stdout
    assert snapshot(journal) == before


# ------------------------------------------------------------------ status only reads
def empty_sqlite(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=0")
    conn.execute("VACUUM")  # a valid database file with no tables
    conn.close()
    assert path.stat().st_size > 0
    return path


@pytest.mark.parametrize("kind", ["zero bytes", "no tables"])
def test_status_on_an_empty_file_says_it_is_no_journal_and_leaves_it_as_it_was(
    project, tmp_path, kind
):
    path = tmp_path / "empty.journal"
    if kind == "zero bytes":
        path.write_bytes(b"")
    else:
        empty_sqlite(path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = snapshot(path)
    result = run(["status", str(project.issue_dir), "--journal", str(path)], project.root)
    assert result.returncode == 1
    assert "not a dispatch journal" in error_line(result.stderr)
    assert snapshot(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.journal", "news"]


def test_status_of_a_journal_changes_not_a_byte_of_it(project, server, half_sent):
    journal, _ = half_sent
    os.utime(journal, ns=(1_000_000_000, 1_000_000_000))
    before = snapshot(journal)
    for fmt in ("text", "json"):
        args = ["status", str(project.issue_dir), "--journal", str(journal), "--format", fmt]
        assert run(args, project.root).returncode == 0
    assert snapshot(journal) == before


# ------------------------------------------------------------------ paths that cannot be journals
@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_a_journal_path_that_cannot_be_a_journal_is_one_line(project, server, tmp_path, where):
    path = tmp_path if where == "a folder" else project.root / "dispatch.yaml" / "send.journal"
    send = run(
        send_args(project, server, project.csv(recipients(3)), "--journal", str(path)), project.root
    )
    assert send.returncode == 1
    error_line(send.stderr)
    assert server.handler.connections == 0
    if where == "a folder":
        status = run(["status", str(project.issue_dir), "--journal", str(path)], project.root)
        assert status.returncode == 1 and "cannot read the journal" in error_line(status.stderr)
