"""Nothing from outside reaches the terminal raw: a relay's reply, a name, a page title."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from tests.helpers.send import dispatch_env, recipients, send_args
from tests.helpers.smtp_server import reply_always

OSC_TITLE = "\x1b]0;pwned\x07"  # would retitle the terminal
CLEAR = "\x1b[2J"  # would clear the screen


def test_a_relay_reply_with_escapes_is_printed_inert_by_status(project, server):
    server.handler.fail(
        "RCPT",
        reply_always(f"550 5.1.1 {OSC_TITLE}{CLEAR}no such user", {"r00001@example.com"}),
    )
    sent = subprocess.run(
        [
            sys.executable,
            "-m",
            "dispatch_mail.cli",
            *send_args(project, server, project.csv(recipients(3))),
        ],
        cwd=project.root,
        env=dispatch_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert sent.returncode == 1, sent.stderr
    # the journal keeps the reply as the relay sent it (evidence) …
    with sqlite3.connect(project.journal) as conn:
        (reply,) = conn.execute(
            "SELECT last_reply FROM recipients WHERE email = 'r00001@example.com'"
        ).fetchone()
    assert "\x1b" in reply
    # … and no command prints it raw
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "dispatch_mail.cli",
            "status",
            str(project.issue_dir),
            "--journal",
            str(project.journal),
        ],
        cwd=project.root,
        env=dispatch_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert "no such user" in status.stdout
    assert "\x1b" not in status.stdout + status.stderr and "\x07" not in status.stdout
    as_json = subprocess.run(
        [
            sys.executable,
            "-m",
            "dispatch_mail.cli",
            "status",
            str(project.issue_dir),
            "--journal",
            str(project.journal),
            "--format",
            "json",
        ],
        cwd=project.root,
        env=dispatch_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert "\x1b" not in as_json.stdout
    assert json.loads(as_json.stdout)[0]["failures"][0]["email"] == "r00001@example.com"
