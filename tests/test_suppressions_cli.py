"""`dispatch suppressions` end to end: a real project, a real store, the real command line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result

from dispatch_mail.cli import main
from tests.helpers.project import PROJECT_YAML, create_project

REPO = Path(__file__).resolve().parents[1]
LISTS = """\
lists:
  news:
    csv: lists/news.csv
  events:
    csv: lists/events.csv
"""


@pytest.fixture
def news(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with two lists; the working folder is its root; no database in the environment."""
    monkeypatch.delenv("DISPATCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    root = create_project(tmp_path / "news", config=PROJECT_YAML + LISTS)
    monkeypatch.chdir(root)
    return root


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["suppressions", *args])


def errors(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def listed(*args: str) -> list[dict[str, str | None]]:
    result = run("list", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    entries: list[dict[str, str | None]] = json.loads(result.stdout)
    return entries


def test_add_list_and_remove(news: Path) -> None:
    added = run("add", "Ann@Example.ORG", "--reason", "manual")
    assert added.exit_code == 0, added.output
    assert added.stdout == "Ann@example.org: suppressed on every list\n"
    assert run("add", "ann@example.org", "--reason", "manual").stdout.endswith(
        "already suppressed on every list\n"
    )
    assert (
        run("add", "bob@example.org", "--reason", "unsubscribed", "--list", "news").exit_code == 0
    )
    assert (news / ".dispatch" / "suppressions.sqlite").is_file()

    text = run("list").stdout.splitlines()
    assert text[0].split() == ["email", "list", "reason", "source", "at", "issue"]
    assert text[1].split()[:4] == ["Ann@example.org", "*", "manual", "manual"]
    assert text[2].split()[:4] == ["bob@example.org", "news", "unsubscribed", "manual"]
    assert text[1].index("*") == text[0].index("list") == text[2].index("news")  # aligned
    assert text[-1] == "2 suppressions"

    entries = listed("--list", "events")
    assert [e["email"] for e in entries] == ["Ann@example.org"]
    assert entries[0]["at"] and entries[0]["at"].endswith("+00:00")
    assert [e["email"] for e in listed("--reason", "unsubscribed")] == ["bob@example.org"]

    removed = run("remove", "BOB@example.org", "--list", "news")
    assert removed.exit_code == 0 and removed.stdout == "BOB@example.org: 1 suppression lifted\n"
    assert [e["email"] for e in listed()] == ["Ann@example.org"]


def test_bad_input_fails_in_one_line_each(news: Path) -> None:
    bad_email = run("add", "not-an-address", "--reason", "manual")
    assert bad_email.exit_code == 2
    assert errors(bad_email) == [
        "error: cannot use 'not-an-address': 'not-an-address' is not a valid email address"
    ]
    bad_reason = run("add", "a@example.org", "--reason", "bored")
    assert bad_reason.exit_code == 2
    assert [line for line in bad_reason.stderr.splitlines() if "Error" in line] == [
        "Error: Invalid value for '--reason': 'bored' is not one of 'unsubscribed', "
        "'hard-bounce', 'soft-bounce', 'complaint', 'manual'."
    ]
    unknown_list = run("add", "a@example.org", "--reason", "manual", "--list", "nope")
    assert unknown_list.exit_code == 2
    assert errors(unknown_list) == [
        "error: no list 'nope' in dispatch.yaml (its lists: events, news; '*': every list)"
    ]
    assert listed() == []


def test_import_reports_every_bad_row_and_imports_nothing(news: Path) -> None:
    (news / "old.csv").write_text(
        "email,name\nann@example.org,Ann\nnot-an-address,Bob\n,Nobody\ncy@example.org,Cy\n"
    )
    result = run("import", "old.csv")
    assert result.exit_code == 1
    assert errors(result) == [
        "error: old.csv:3: 'not-an-address' is not an email address (nor Name <address>)",
        "error: old.csv:4: no address in the email column",
    ]
    assert listed() == []


def test_import_twice_adds_nothing_new(news: Path) -> None:
    (news / "old.csv").write_text("Email Address\nAnn <ann@example.org>\nbob@example.org\n")
    first = run("import", "old.csv", "--list", "news", "--reason", "unsubscribed")
    assert first.exit_code == 0, first.output
    assert first.stdout == "old.csv: 2 read, 2 added, 0 already suppressed\n"
    again = run("import", "old.csv", "--list", "news", "--reason", "unsubscribed")
    assert again.stdout == "old.csv: 2 read, 0 added, 2 already suppressed\n"
    entries = listed()
    assert [(e["email"], e["list"], e["reason"], e["source"]) for e in entries] == [
        ("ann@example.org", "news", "unsubscribed", "import"),
        ("bob@example.org", "news", "unsubscribed", "import"),
    ]


def test_export_writes_a_csv_no_spreadsheet_runs(news: Path) -> None:
    run("add", "=cmd@example.org", "--reason", "complaint")
    run("add", "plain@example.org", "--reason", "manual", "--list", "news")
    (news / "out.csv").write_text("previous\n")
    result = run("export", "out.csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 suppressions written to out.csv\n"
    with (news / "out.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["email", "list", "reason", "source", "at", "issue", "evidence"]
    assert [row[:4] for row in rows[1:]] == [
        ["'=cmd@example.org", "*", "complaint", "manual"],
        ["plain@example.org", "news", "manual", "manual"],
    ]
    assert rows[1][4].endswith("+00:00")
    assert sorted(p.name for p in news.iterdir() if p.name.startswith(".out.csv")) == []
    # an export reads back as a suppression file
    assert run("import", "out.csv", "--reason", "manual").exit_code == 0


def test_a_shared_postgresql_database(
    news: Path, fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = run("add", "ann@example.org", "--reason", "manual", "--database", fresh_postgres_url)
    assert added.exit_code == 0, added.output
    assert listed() == []  # the project's own SQLite file is another store
    monkeypatch.setenv("DISPATCH_DATABASE_URL", fresh_postgres_url)
    assert [e["email"] for e in listed()] == ["ann@example.org"]


def test_an_unreachable_database_is_one_line_without_its_password(news: Path) -> None:
    result = run("list", "--database", "postgresql://news:hunter2-secret@127.0.0.1:1/news")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: postgresql://news@127.0.0.1:1/news: cannot use the suppression store: "
    )
    assert "hunter2" not in result.output
    other = run("list", "--database", "mysql://news@db/news")
    assert other.exit_code == 1 and errors(other) == [
        "error: the suppression store's URL has 'mysql:'; only postgresql:// "
        "(or postgres://) URLs are supported"
    ]


def test_the_installed_command_runs_it(news: Path, fresh_postgres_url: str) -> None:
    env = {**os.environ, "DISPATCH_DATABASE_URL": fresh_postgres_url, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "dispatch_mail.cli", "suppressions"]
    subprocess.run(
        [*command, "add", "ann@example.org", "--reason", "hard-bounce", "--project", str(news)],
        env=env, check=True, capture_output=True, cwd=REPO,
    )  # fmt: skip
    shown = subprocess.run(
        [*command, "list", "--project", str(news)],
        env=env, capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    assert shown.stdout.splitlines()[1].split()[:3] == ["ann@example.org", "*", "hard-bounce"]
    assert (urlsplit(fresh_postgres_url).password or "?") not in shown.stdout + shown.stderr


def test_init_keeps_the_store_out_of_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(main, ["init", "fresh", "--name", "Fresh"]).exit_code == 0
    ignored = (tmp_path / "fresh" / ".gitignore").read_text().splitlines()
    assert "/.dispatch/" in ignored  # the default SQLite store, with its -wal and -shm files
