"""`dispatch bounces --mbox / --maildir` as a real process, then a real send that skips them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dispatch_mail.project.loader import load_project
from dispatch_mail.suppression import open_store
from tests.helpers.project import Project
from tests.helpers.returnmail import (
    EXPECTED,
    RETURN_PATH_SETTING,
    SUBSCRIBERS,
    SUPPRESSED,
    corpus_messages,
    read_journal,
    snapshot,
    write_maildir,
    write_mbox,
)
from tests.helpers.send import run
from tests.helpers.smtp_server import SmtpServer


def _send(project: Project, server: SmtpServer, issue: str) -> None:
    args = ["send", str(project.root / "issues" / issue), "--list", "subscribers", "--yes", "-q"]
    result = run([*args, *server.cli_args()], cwd=project.root)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def sent(project: Project, server: SmtpServer) -> Project:
    """Issue ``one`` really sent to every subscriber: the journal the bounces map back to."""
    project.extra = RETURN_PATH_SETTING
    project.write()
    (project.root / "lists" / "subscribers.csv").write_text(
        "email,name\n" + "".join(f"{e},Reader\n" for e in SUBSCRIBERS), encoding="utf-8"
    )
    _send(project, server, "one")
    assert len(server.handler.messages) == len(SUBSCRIBERS)
    return project


def _messages(project: Project) -> list[bytes]:
    rows = read_journal(project.root / "build" / "one" / "send-subscribers.journal")
    return [raw for _, raw in corpus_messages(rows)]


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_bounces_are_recorded_once_and_the_next_send_skips_them(
    sent: Project, server: SmtpServer, tmp_path: Path, kind: str
) -> None:
    messages = _messages(sent)
    if kind == "mbox":
        box = write_mbox(tmp_path / "bounces.mbox", messages)
    else:
        box = write_maildir(tmp_path / "Maildir", messages)
    before = snapshot(box)

    first = run(["bounces", f"--{kind}", str(box)], cwd=sent.root)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == len(EXPECTED) + 1  # one per message, then the summary
    for expected in EXPECTED:
        assert any(expected.shown in line for line in lines), (expected.file, first.stdout)
    summary = lines[-1]
    assert "14 messages" in summary and "4 hard-bounce" in summary and "2 unknown" in summary
    assert "1 unmatched" in summary

    second = run(["bounces", f"--{kind}", str(box), "--format", "json"], cwd=sent.root)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["counts"]["duplicate"] == sum(e.outcome == "recorded" for e in EXPECTED)
    assert snapshot(box) == before  # never modified

    # the send reads the store: a second issue to the same list skips the suppressed
    shutil.copytree(sent.root / "issues" / "one", sent.root / "issues" / "two")
    already = server.handler.count()
    _send(sent, server, "two")
    got = {m.recipient for m in server.handler.messages[already:]}
    assert got == set(SUBSCRIBERS) - SUPPRESSED
    with open_store(load_project(sent.root)) as store:
        assert set(store.suppressed("subscribers")) == SUPPRESSED


def test_a_dry_run_prints_and_records_nothing(sent: Project, tmp_path: Path) -> None:
    box = write_mbox(tmp_path / "b.mbox", _messages(sent))
    result = run(["bounces", "--mbox", str(box), "--dry-run"], cwd=sent.root)
    assert result.returncode == 0, result.stderr
    assert "(dry run)" in result.stdout and "nothing recorded" in result.stdout
    with open_store(load_project(sent.root)) as store:
        assert list(store.entries()) == []


def test_an_unreadable_mailbox_fails_in_one_line(sent: Project, tmp_path: Path) -> None:
    result = run(["bounces", "--maildir", str(tmp_path / "nope")], cwd=sent.root)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "not a maildir" in result.stderr
    none = run(["bounces"], cwd=sent.root)
    assert none.returncode != 0 and "--mbox FILE, --maildir DIR or --imap URL" in none.stderr
