"""Shared fixtures of the send tests: a small project in a temp folder, test SMTP servers, runners.

Test modules take the fixtures with ``from conftest_send import *`` (tests/conftest.py
belongs to the build tests); the helpers are imported by name.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import smtpd as _smtpd  # tests/smtpd.py, not the old standard-library module
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

assert hasattr(_smtpd, "SmtpServer"), "tests/smtpd.py must shadow the standard library's smtpd"

from smtpd import Recorder, SmtpServer

ROOT = Path(__file__).resolve().parent.parent
SECRET = "0123456789abcdef0123"
PROJECT_YAML = """\
name: Example Weekly
sender:
  name: Example Weekly
  address: weekly@example.org
  reply_to: editors@example.org
footer:
  organisation: Example Project
  postal_address: Example Foundation, 123 Example Street, Springfield, EX 00000, USA
  unsubscribe_url: https://news.example.org/unsubscribe?t={{token}}
{mailto}subject_prefix: "[TEST]"
reviewers:
  - editors@example.org
lists:
  subscribers:
    csv: lists/subscribers.csv
    suppression: lists/suppressed.csv
{extra}"""
ISSUE_YAML = """\
subject: {subject}
name: Issue 1
date: 2026-01-08
greeting: "Hi {{name}},"
masthead:
  eyebrow: Example Weekly · Issue 1
  headline: Hello, readers
sections:
  - kind: announcements
    heading: News
    items:
      - {item}
"""


@dataclass
class Project:
    """A newsletter project in a temp folder: dispatch.yaml, one issue, lists."""

    root: Path
    mailto: bool = True
    extra: str = ""
    subject: str = "Example Weekly, issue 1"
    item: str = "Example 2.0 is out, with **faster** start-up."
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.write()

    def write(self) -> None:
        mailto = "  unsubscribe_mailto: unsubscribe@example.org\n" if self.mailto else ""
        (self.root / "dispatch.yaml").write_text(
            PROJECT_YAML.format(mailto=mailto, extra=self.extra), encoding="utf-8"
        )
        self.issue_dir.mkdir(parents=True, exist_ok=True)
        (self.issue_dir / "issue.yaml").write_text(
            ISSUE_YAML.format(subject=self.subject, item=self.item), encoding="utf-8"
        )
        (self.root / "lists").mkdir(exist_ok=True)

    def change_content(self, item: str) -> None:
        self.item = item
        self.write()

    @property
    def issue_dir(self) -> Path:
        return self.root / "issues" / "one"

    @property
    def journal(self) -> Path:
        return self.root / "send.journal"

    def csv(
        self,
        rows: list[tuple[str, ...]] | list[str],
        name: str = "list.csv",
        header: str = "email,name",
    ) -> Path:
        """Write a recipients CSV; rows are (email, name) tuples or bare addresses."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        buffer.write(header + "\n")
        for row in rows:
            writer.writerow([row] if isinstance(row, str) else list(row))
        path = self.root / name
        path.write_text(buffer.getvalue(), encoding="utf-8")
        return path


def recipients(n: int, start: int = 0, domain: str = "example.com") -> list[tuple[str, str]]:
    return [(f"r{i:05d}@{domain}", f"Reader {i}") for i in range(start, start + n)]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("DISPATCH_UNSUBSCRIBE_SECRET", SECRET)
    for name in (
        "DISPATCH_SMTP_USER",
        "DISPATCH_SMTP_PASSWORD",
        "DISPATCH_DKIM_KEY_FILE",
        "DISPATCH_DEBUG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    root = tmp_path / "news"
    root.mkdir()
    return Project(root)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as running:
        yield running


@pytest.fixture
def recorder(server: SmtpServer) -> Recorder:
    return server.handler


@pytest.fixture(scope="session")
def ca():
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture(scope="session")
def cafile(ca, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca):
    """A server SSLContext with a certificate for 127.0.0.1 and localhost, issued by ``ca``."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


# ------------------------------------------------------------------ running the CLI
def send_args(
    project: Project, server: SmtpServer | None, csv_path: Path, *extra: str
) -> list[str]:
    args = [
        "send",
        str(project.issue_dir),
        "--list",
        str(csv_path),
        "--yes",
        "--journal",
        str(project.journal),
        "--retry-base",
        "0.02",
        "--throttle-pause",
        "0.1",
        "-q",
    ]
    if server is not None:
        args += server.cli_args()
    return args + list(extra)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in process (CliRunner); stdout and stderr apart."""
    from dispatch_mail.cli import main

    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def dispatch_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env.update(DISPATCH_UNSUBSCRIBE_SECRET=SECRET, NO_COLOR="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def spawn(args: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    """``dispatch`` as a real process (its own session, so signals reach it alone)."""
    return subprocess.Popen(
        [sys.executable, "-m", "dispatch_mail.cli", *args],
        cwd=cwd,
        env=dispatch_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run(args: list[str], cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    proc = spawn(args, cwd, **env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"dispatch {' '.join(args)} did not finish in {timeout}s\n{out}\n{err}"
        )
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def interrupt(
    proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30
) -> tuple[str, str]:
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"dispatch did not stop after signal {sig}\n{out}\n{err}")


def wait_until(predicate, timeout: float = 10.0, step: float = 0.005) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
