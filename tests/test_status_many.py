"""`dispatch status` of several issues, or --all: each sent issue's journals, and a line
for each issue not sent yet (one issue not sent stays an error, exit 2)."""

from __future__ import annotations

import json
import shutil

from tests.helpers.project import Project
from tests.helpers.send import invoke, recipients, send_args
from tests.helpers.smtp_server import SmtpServer


def test_status_of_every_issue_reports_the_sent_and_names_the_unsent(
    project: Project, server: SmtpServer, monkeypatch
):
    shutil.copytree(project.issue_dir, project.root / "issues" / "two")
    args = send_args(project, server, project.csv(recipients(3)))
    journal_at = args.index("--journal")
    del args[journal_at : journal_at + 2]  # the issue's own journal, where status looks
    sent = invoke(*args)
    assert sent.exit_code == 0, sent.output

    monkeypatch.chdir(project.root)
    every = invoke("status", "--all")
    assert every.exit_code == 0, every.output
    lines = every.stdout.splitlines()
    assert any(": 3/3 sent, 0 pending" in line for line in lines), lines
    assert "two: nothing sent yet" in lines

    named = invoke("status", "issues/one", "issues/two", "--format", "json")
    assert named.exit_code == 0, named.output
    assert [entry["counts"]["sent"] for entry in json.loads(named.stdout)] == [3]

    alone = invoke("status", "issues/two")
    assert alone.exit_code == 2
    assert "no send journal for two" in alone.stderr

    both = invoke("status", "issues/one", "issues/two", "--journal", "x.journal")
    assert both.exit_code == 2 and "give one issue with it" in both.stderr
