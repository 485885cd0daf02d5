"""`dispatch bounces --imap` against a real Dovecot over verified TLS: same results as an mbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch_mail.project.loader import load_project
from dispatch_mail.suppression import open_store
from tests.helpers import dovecot
from tests.helpers.project import Project
from tests.helpers.returnmail import (
    EXPECTED,
    RETURN_PATH_SETTING,
    SUPPRESSED,
    corpus_messages,
    write_journal,
)
from tests.helpers.send import run

if not dovecot.available():
    if os.environ.get("CI") == "true":
        pytest.fail("dovecot (dovecot-imapd) is required in CI", pytrace=False)
    pytest.skip("needs /usr/sbin/dovecot and root", allow_module_level=True)

FINAL = sum(e.outcome in ("recorded", "ignored") for e in EXPECTED)  # what --move-to moves


@pytest.fixture(scope="module")
def imap(ca) -> Iterator[dovecot.Dovecot]:  # type: ignore[no-untyped-def]
    server = dovecot.Dovecot(ca).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def inbox(imap: dovecot.Dovecot, project: Project) -> dovecot.Dovecot:
    imap.clear()
    project.extra = RETURN_PATH_SETTING
    project.write()
    rows = write_journal(project.root)
    imap.deliver([raw for _, raw in corpus_messages(rows)])
    return imap


def _bounces(project: Project, *args: str, password: str = dovecot.PASSWORD, cafile: Path | None):
    env = {"DISPATCH_IMAP_PASSWORD": password}
    if cafile is not None:
        env["SSL_CERT_FILE"] = str(cafile)
    return run(["bounces", *args], cwd=project.root, **env)


def test_handled_messages_move_and_unknown_ones_stay(
    inbox: dovecot.Dovecot, project: Project, cafile: Path
) -> None:
    url = inbox.url("INBOX")
    result = _bounces(project, "--imap", url, "--move-to", "Processed", cafile=cafile)
    assert result.returncode == 0, result.stderr
    for expected in EXPECTED:
        assert any(expected.shown in line for line in result.stdout.splitlines()), expected.file
    assert f"{FINAL} messages moved to Processed" in result.stdout
    assert inbox.folder_count("Processed") == FINAL
    assert inbox.folder_count() == len(EXPECTED) - FINAL  # unknown and unmatched stay
    with open_store(load_project(project.root)) as store:
        assert set(store.suppressed("subscribers")) == SUPPRESSED

    again = _bounces(project, "--imap", url, "--move-to", "Processed", cafile=cafile)
    assert again.returncode == 0, again.stderr
    assert "0 messages moved" in again.stdout  # what is left is what it did not understand
    processed = _bounces(project, "--imap", inbox.url("Processed"), cafile=cafile)
    assert processed.stdout.count("already processed") == sum(
        e.outcome == "recorded" for e in EXPECTED
    )


def test_a_wrong_password_is_one_line_and_fails(
    inbox: dovecot.Dovecot, project: Project, cafile: Path
) -> None:
    result = _bounces(project, "--imap", inbox.url(), password="wrong", cafile=cafile)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "refused the login" in result.stderr
    assert "wrong" not in result.stderr


def test_an_untrusted_certificate_is_refused(inbox: dovecot.Dovecot, project: Project) -> None:
    result = _bounces(project, "--imap", inbox.url(), cafile=None)
    assert result.returncode != 0
    assert "not trusted" in result.stderr and result.stderr.count("\n") == 1
    assert dovecot.PASSWORD not in result.stderr + result.stdout


def test_a_password_in_the_url_is_refused_before_connecting(
    inbox: dovecot.Dovecot, project: Project, cafile: Path
) -> None:
    leaked = f"imaps://{dovecot.USER}:secret@127.0.0.1:{inbox.port}/INBOX"
    result = _bounces(project, "--imap", leaked, cafile=cafile)
    assert result.returncode != 0 and "must not hold the password" in result.stderr
    assert ":secret@" not in result.stderr
