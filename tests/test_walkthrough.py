"""The README's walk-through and the docs' runnable blocks, run exactly as written.

A fenced block right after ``<!-- walkthrough -->`` (README.md) or ``<!-- runnable -->``
(README.md, docs/*.md) is run verbatim by bash with ``set -euo pipefail``, so a step
that stops working fails here before a reader finds out. The walk-through starts
in an empty folder; the other blocks in a copy of this repository's newsletter
(dispatch.yaml, issues/, examples/). ``dispatch`` and ``python3`` on PATH are this
test's interpreter; the walk-through's SMTP sink listens on a free port (the block
reads ``$SMTP_PORT``), on loopback like every test.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.checkout import ROOT, copy_source
from tests.helpers.needs import need_module, need_program

MARKED = re.compile(r"^<!-- (walkthrough|runnable) -->\n+```(?:sh|bash)\n(.*?)^```$", re.M | re.S)


def marked_blocks(path: Path) -> list[tuple[str, int, str]]:
    """(marker, line, code) of every marked block in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [
        (m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2)) for m in MARKED.finditer(text)
    ]


def runnable_blocks() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for marker, line, code in marked_blocks(path):
            if marker == "runnable":
                found.append((f"{path.relative_to(ROOT)}:{line}", code))
    return found


RUNNABLE = runnable_blocks()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def tools(folder: Path) -> Path:
    """``dispatch`` and ``python3`` as commands that run this test's interpreter (a venv's too)."""
    folder.mkdir()
    commands = {
        "dispatch": f'exec "{sys.executable}" -m dispatch_mail.cli "$@"',
        "python3": f'exec "{sys.executable}" "$@"',
        "python": f'exec "{sys.executable}" "$@"',
    }
    for name, line in commands.items():
        script = folder / name
        script.write_text(f"#!/bin/sh\n{line}\n", encoding="utf-8")
        script.chmod(0o755)
    return folder


def run_block(code: str, cwd: Path, tools_dir: Path, **env: str) -> str:
    """The block's output; fails with all of it when any step fails. Its leftovers are stopped."""
    environment = dict(os.environ, NO_COLOR="1", **env)
    environment["PATH"] = f"{tools_dir}{os.pathsep}{environment.get('PATH', '')}"
    environment.pop("DISPATCH_PROJECT", None)
    started = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its background jobs are ours to stop, and only they
    )
    try:
        output, _ = started.communicate(timeout=300)
    finally:
        try:
            os.killpg(started.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        started.wait()
    assert started.returncode == 0, f"exit {started.returncode}:\n{output}"
    return output


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    need_program("bash", "Debian: apt-get install bash")
    need_module("aiosmtpd", "the test extra: pip install -e '.[test]'")
    (walkthrough,) = [c for m, _, c in marked_blocks(ROOT / "README.md") if m == "walkthrough"]
    assert "pip install" not in walkthrough  # installing is the Install block's job
    empty = tmp_path / "empty"
    empty.mkdir()
    output = run_block(walkthrough, empty, tools(tmp_path / "bin"), SMTP_PORT=str(free_port()))

    assert "test copies: 1 sent to me@example.org" in output
    # what the sink printed: the test copy itself
    received = output.split("---------- MESSAGE FOLLOWS ----------", 1)
    assert len(received) == 2, output
    message = received[1].split("------------ END MESSAGE ------------", 1)[0]
    assert "To: me@example.org" in message
    assert re.search(r"^Subject: \[TEST\] My News: ", message, re.M), message
    project = empty / "my-news"
    first, following = sorted(p.name for p in (project / "issues").iterdir())
    assert (project / "build" / first / "email.eml").is_file()
    assert "Release notes" in (project / "issues" / following / "issue.yaml").read_text()


@pytest.mark.parametrize(("where", "code"), RUNNABLE, ids=[where for where, _ in RUNNABLE])
def test_a_runnable_docs_block_runs_as_written(where: str, code: str, tmp_path: Path) -> None:
    need_program("bash", "Debian: apt-get install bash")
    repository = copy_source(tmp_path / "repo")
    run_block(code, repository, tools(tmp_path / "bin"))


def test_the_marked_blocks_are_there() -> None:
    """A marker that no longer sits right above a shell block would silently test nothing."""
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        markers = len(re.findall(r"^<!-- (?:walkthrough|runnable) -->", text, re.M))
        assert markers == len(marked_blocks(path)), f"{path.name}: a marker without its block"
    assert [m for m, *_ in marked_blocks(ROOT / "README.md")].count("walkthrough") == 1
    wheres = [w for w, _ in runnable_blocks()]
    assert any(w.startswith("README.md:") for w in wheres)
    assert any(w.startswith("docs/") for w in wheres)


def test_the_built_eml_is_described_as_the_preview_it_is(tmp_path: Path) -> None:
    """To: is the sender and the unsubscribe link has no token: the README and the help say so."""
    import email
    import email.policy

    from click.testing import CliRunner

    from dispatch_mail.cli import main

    out = tmp_path / "out"
    built = CliRunner().invoke(main, ["build", str(ROOT / "examples/minimal"), "--out", str(out)])
    assert built.exit_code == 0, built.output
    message = email.message_from_bytes((out / "email.eml").read_bytes(), policy=email.policy.SMTP)
    assert message["To"].addresses[0].addr_spec == message["From"].addresses[0].addr_spec
    assert "{token}" not in message["List-Unsubscribe"]

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "a complete `.eml`" not in readme and "a preview copy" in readme
    help_text = CliRunner().invoke(main, ["build", "--help"]).output
    assert "email.eml is a preview" in help_text and "addressed to the sender" in help_text
