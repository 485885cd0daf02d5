"""Return mail classified and recorded: real-shaped bounces mapped back through a real journal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dispatch_mail.bounces.classify import classify
from dispatch_mail.bounces.process import process_bounces
from dispatch_mail.bounces.sources import MailboxSpec
from dispatch_mail.errors import MailboxError
from dispatch_mail.project.loader import load_project
from dispatch_mail.suppression import open_store
from tests.helpers.project import Project
from tests.helpers.returnmail import (
    EXPECTED,
    LIST,
    RETURN_PATH_SETTING,
    SUPPRESSED,
    Expected,
    corpus_messages,
    render,
    snapshot,
    write_journal,
    write_mbox,
)

MAILTO = "unsubscribe@example.org"


@pytest.fixture
def news(project: Project) -> Project:
    project.extra = RETURN_PATH_SETTING
    project.write()
    return project


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda e: e.file)
def test_each_corpus_message_is_classified_as_its_mta_meant_it(
    news: Project, expected: Expected
) -> None:
    rows = write_journal(news.root)
    found = classify(render(expected.file, rows.get(expected.recipient)), unsubscribe_mailto=MAILTO)
    assert found.kind == expected.kind
    if expected.kind in ("hard-bounce", "soft-bounce", "complaint", "unsubscribe"):
        emails = [s.email for s in found.subjects]
        assert emails == [expected.recipient or "mallory@example.net"]


def _run(news: Project, mbox: Path, **options: object):  # type: ignore[no-untyped-def]
    project = load_project(news.root)
    return process_bounces(project, MailboxSpec(mbox=mbox), **options)  # type: ignore[arg-type]


def test_a_mailbox_records_each_event_once_and_a_second_run_changes_nothing(
    news: Project, tmp_path: Path
) -> None:
    rows = write_journal(news.root)
    mbox = write_mbox(tmp_path / "bounces.mbox", [raw for _, raw in corpus_messages(rows)])
    before = snapshot(mbox)

    first = _run(news, mbox)
    lines = {r.key: r.findings[0] for r in first.messages}
    for number, expected in enumerate(EXPECTED, 1):
        finding = lines[str(number)]
        assert finding.outcome == expected.outcome, (expected.file, finding.line)
        assert expected.shown in finding.line, (expected.file, finding.line)
    project = load_project(news.root)
    with open_store(project) as store:
        barred = set(store.suppressed(LIST))
        assert barred == SUPPRESSED  # soft (1 of 3), delayed, auto-replies, strangers: not barred
        assert {s.email for s in store.entries(reason="soft-bounce")} <= {"erin@example.com"}
        everything = sorted((s.email, s.reason, s.list) for s in store.entries())

    second = _run(news, mbox)
    for result, expected in zip(second.messages, EXPECTED, strict=True):
        if expected.outcome == "recorded":
            assert result.findings[0].outcome == "duplicate"
            assert result.findings[0].line.startswith("already processed")
    assert second.counts["duplicate"] == sum(e.outcome == "recorded" for e in EXPECTED)
    with open_store(project) as store:
        assert sorted((s.email, s.reason, s.list) for s in store.entries()) == everything
    assert snapshot(mbox) == before  # an mbox is only read


def test_hard_bounces_and_complaints_bar_every_list_unsubscribes_only_theirs(
    news: Project, tmp_path: Path
) -> None:
    rows = write_journal(news.root)
    mbox = write_mbox(tmp_path / "b.mbox", [raw for _, raw in corpus_messages(rows)])
    _run(news, mbox)
    with open_store(load_project(news.root)) as store:
        other = set(store.suppressed("another-list"))
    assert other == SUPPRESSED - {"judy@example.com"}  # judy's token named her list only


def test_soft_bounces_suppress_only_at_the_policys_limit(news: Project, tmp_path: Path) -> None:
    rows = write_journal(news.root)
    template = render("postfix-mailbox-full.eml", rows["erin@example.com"])
    copies = [
        template.replace(b"4XkR7m0Zq2z1xKc@", f"4XkR7m0Zq2z{n}xKc@".encode()) for n in range(3)
    ]
    results = [
        _run(news, write_mbox(tmp_path / f"{n}.mbox", [raw])) for n, raw in enumerate(copies)
    ]
    lines = [r.messages[0].findings[0].line for r in results]
    assert "(1 of 3 in 30 days)" in lines[0] and "(2 of 3 in 30 days)" in lines[1]
    assert "(3 of 3 in 30 days: suppressed)" in lines[2]
    with open_store(load_project(news.root)) as store:
        assert "erin@example.com" in store.suppressed(LIST)


def test_a_dry_run_records_nothing(news: Project, tmp_path: Path) -> None:
    rows = write_journal(news.root)
    mbox = write_mbox(tmp_path / "b.mbox", [raw for _, raw in corpus_messages(rows)])
    run = _run(news, mbox, dry_run=True)
    assert [r.findings[0].outcome for r in run.messages].count("would-record") == sum(
        e.outcome == "recorded" for e in EXPECTED
    )
    store_file = news.root / ".dispatch" / "suppressions.sqlite"
    assert not store_file.exists()
    with open_store(load_project(news.root)) as store:
        assert list(store.entries()) == []


def test_a_bounce_found_only_by_its_recipient_in_the_journal_is_recorded(
    news: Project, tmp_path: Path
) -> None:
    rows = write_journal(news.root)
    raw = render("gmail-dsn-failure.eml", rows["dave@example.com"])
    raw = raw.replace(rows["dave@example.com"].message_id.encode(), b"<lost@elsewhere.example>")
    run = _run(news, write_mbox(tmp_path / "b.mbox", [raw]))
    assert run.messages[0].findings[0].outcome == "recorded"


def test_a_forged_verp_address_is_not_believed(news: Project, tmp_path: Path) -> None:
    rows = write_journal(news.root, ["alice@example.com"])
    raw = render("postfix-user-unknown.eml", rows["alice@example.com"])
    forged = raw.replace(b"alice@example.com", b"stranger@example.net")
    forged = forged.replace(rows["alice@example.com"].message_id.encode(), b"<x@y.example>")
    token = forged.split(b"bounces+")[1][:29]
    forged = forged.replace(token, token[:-1] + (b"a" if token[-1:] != b"a" else b"b"))
    run = _run(news, write_mbox(tmp_path / "b.mbox", [forged]))
    assert run.messages[0].findings[0].outcome == "unmatched"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n"
        b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822\nStatus: 5\n",
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n" * 50,
        b"From: =?utf-8?q?=ff=fe?= <>\nSubject: =?x-unknown?b?////?=\nMessage-ID: <<<>>>\n\nhi",
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n--b\n"
        b"Content-Type: message/feedback-report\n\nOriginal-Rcpt-To: ;;;\n--b--\n",
        b"X-Failed-Recipients: \xff@\xfe\nFrom: MAILER-DAEMON@x\n\n" + b"a" * 10_000,
    ],
)
def test_malformed_input_never_crashes(raw: bytes) -> None:
    found = classify(raw, unsubscribe_mailto=MAILTO)
    assert found.kind in ("unknown", "hard-bounce", "soft-bounce", "complaint", "auto-reply")
    assert found.evidence


def test_an_unreadable_mailbox_is_one_clear_error(news: Project, tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match="no such mbox file"):
        _run(news, tmp_path / "missing.mbox")
    locked = write_mbox(tmp_path / "locked.mbox", [b"Subject: x\n\nhi\n"])
    os.chmod(locked, 0)
    try:
        if os.geteuid() != 0:  # root reads any file
            with pytest.raises(MailboxError, match="permission denied"):
                _run(news, locked)
    finally:
        os.chmod(locked, 0o600)
