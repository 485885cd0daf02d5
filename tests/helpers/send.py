"""Running ``dispatch`` in the send tests: in process (CliRunner) or as a real process to signal.

A real process gets a clean environment: none of the caller's DISPATCH_* settings
(they would change what is sent), except the test run's own template cache.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import CliRunner, Result

from tests.helpers.project import REPO, Project
from tests.helpers.smtp_server import SmtpServer

if TYPE_CHECKING:
    import trustme

SECRET = "0123456789abcdef0123456789abcdef"
KEPT_SETTINGS = ("DISPATCH_CACHE_DIR",)  # set for the whole test run by tests/conftest.py


def recipients(n: int, start: int = 0, domain: str = "example.com") -> list[tuple[str, str]]:
    """``n`` distinct (address, name) rows, numbered from ``start``."""
    return [(f"r{i:05d}@{domain}", f"Reader {i}") for i in range(start, start + n)]


def send_args(
    project: Project, server: SmtpServer | None, csv_path: Path, *extra: str
) -> list[str]:
    """``dispatch send`` of the project's issue to ``csv_path``, fast retries, quiet."""
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


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server SSLContext with a certificate for 127.0.0.1 and localhost, issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in process (CliRunner); stdout and stderr apart."""
    from dispatch_mail.cli import main

    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def dispatch_env(**extra: str) -> dict[str, str]:
    """The environment of a ``dispatch`` process: no DISPATCH_* of the caller's, our secret."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_") or k in KEPT_SETTINGS
    }
    env.update(DISPATCH_UNSUBSCRIBE_SECRET=SECRET, NO_COLOR="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def spawn(args: list[str], cwd: Path, **env: str) -> subprocess.Popen[str]:
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


def run(
    args: list[str], cwd: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """``dispatch`` as a real process, to the end; a hang fails the test with what it printed."""
    proc = spawn(args, cwd, **env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"dispatch {' '.join(args)} did not finish in {timeout}s\n{out}\n{err}"
        ) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def interrupt(
    proc: subprocess.Popen[str], sig: int = signal.SIGINT, timeout: float = 30
) -> tuple[str, str]:
    """Send ``sig`` and wait for the process to stop; its (stdout, stderr)."""
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"dispatch did not stop after signal {sig}\n{out}\n{err}") from None


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, step: float = 0.005) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; whether it held."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
