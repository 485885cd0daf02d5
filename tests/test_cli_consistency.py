"""One CLI, one set of conventions (issue 14): issues named the same way everywhere, -v/-q meaning
the same, every option explained, counts spelt right, limits equal to the config's, and settings
a command doesn't read never stopping it."""

from __future__ import annotations

import dataclasses
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dispatch_mail.cli import COMMANDS, EPILOG, main
from dispatch_mail.project import settings
from dispatch_mail.project.wording import plural
from tests.helpers.project import PROJECT_YAML, create_project

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0
BAD_ISSUE = "subject: Test issue\nname: Issue 1\ndate: 2026-13-40\nsections: []\n"


def commands() -> dict[str, click.Command]:
    """Every command and sub-command by its full name (``suppressions list``)."""
    found: dict[str, click.Command] = {}
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None
        found[name] = command
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                found[f"{name} {sub_name}"] = sub
    return found


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two good issues, a and b, in the current folder."""
    create_project(tmp_path, issues={"a": ISSUE, "b": ISSUE.replace("Issue 1", "Issue 2")})
    monkeypatch.chdir(tmp_path)
    return tmp_path


ISSUE = """\
subject: Test issue
name: Issue 1
date: 2026-01-08
masthead:
  headline: Hello
sections:
  - kind: announcements
    items:
      - Something happened.
"""


# ------------------------------------------------------------------ help and no arguments
def test_dispatch_alone_prints_the_help_and_succeeds() -> None:
    result = run()
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    assert "build" in result.output and "preview" in result.output
    assert "-v/--verbose" in result.output and "-q/--quiet" in result.output


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_has_help_text(name: str) -> None:
    command = commands()[name]
    missing = [
        "/".join(param.opts)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert not missing, f"dispatch {name}: options without help: {', '.join(missing)}"


# ------------------------------------------------------------------ -v and -q
def _flag(command: click.Command, short: str) -> click.Option | None:
    return next(
        (p for p in command.params if isinstance(p, click.Option) and short in p.opts), None
    )


VERBOSE_HELP = "Print more detail (notes, stage timings)."
QUIET_HELP = "Print only warnings, errors and the summary line."


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in sorted(commands())
        if any(_flag(commands()[name], f) for f in ("-v", "-q"))
    ],
)
def test_v_and_q_mean_the_same_everywhere(name: str) -> None:
    command = commands()[name]
    verbose, quiet = _flag(command, "-v"), _flag(command, "-q")
    if verbose is not None:
        assert verbose.opts == ["-v", "--verbose"] and verbose.help == VERBOSE_HELP
    if quiet is not None:
        assert quiet.opts == ["-q", "--quiet"] and quiet.help == QUIET_HELP


def test_the_convention_is_said_once_in_the_main_help_and_in_docs() -> None:
    cli_md = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for text in (EPILOG, cli_md):
        assert "-v/--verbose  more detail" in text
        assert "-q/--quiet    only warnings, errors and the summary line" in text


def test_check_verbose_shows_notes_and_quiet_drops_the_figures(project: Path) -> None:
    plain, verbose, quiet = (run("check", "issues/a", *flag) for flag in ((), ("-v",), ("-q",)))
    assert plain.exit_code == verbose.exit_code == quiet.exit_code
    assert "HTML " in plain.output and "HTML " not in quiet.output
    assert quiet.output.splitlines()[-1] == plain.output.splitlines()[-1].replace(
        " (notes shown with --verbose)", " (notes shown with --verbose)"
    )
    assert "(notes shown with --verbose)" not in verbose.output


def test_build_verbose_adds_timings_and_quiet_keeps_the_summary(project: Path) -> None:
    verbose = run("build", "--all", "-v", "--out", "out")
    assert verbose.exit_code == 0 and "timings:" in verbose.output
    quiet = run("build", "--all", "-q", "--out", "out")
    assert quiet.exit_code == 0
    assert quiet.stdout.splitlines() == ["2 built, 0 failed"]
    one = run("build", "issues/a", "-q", "--out", "out")  # one issue: its own summary line
    assert one.exit_code == 0
    assert one.stdout.splitlines() == ["built a: 1 section, 1 link → out/"], one.stdout


# ------------------------------------------------------------------ one or more issues, or --all
@pytest.mark.parametrize("name", ["build", "check", "screenshot", "export", "preview", "status"])
def test_commands_on_issues_take_several_or_all(name: str) -> None:
    command = commands()[name]
    argument = next(p for p in command.params if isinstance(p, click.Argument))
    assert argument.nargs == -1 and argument.name == "issue_dirs"
    assert _flag(command, "--all") is not None


@pytest.mark.parametrize(("name", "why"), [("send", "a send is one issue to one list"),
                                           ("add", "the one issue it edits")])
def test_send_and_add_take_one_issue_and_say_why(name: str, why: str) -> None:
    command = commands()[name]
    argument = next(p for p in command.params if isinstance(p, click.Argument))
    assert argument.nargs == 1
    assert why in EPILOG.replace("\n", " ")
    assert "One issue" in (command.help or "")


def test_build_several_issues(project: Path) -> None:
    result = run("build", "issues/a", "issues/b", "--out", "out")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2 built, 0 failed"
    assert (project / "out" / "a" / "email.html").is_file()
    assert (project / "out" / "b" / "email.html").is_file()


def test_several_issues_report_every_problem_and_exit_with_the_worst(project: Path) -> None:
    (project / "issues" / "b" / "issue.yaml").write_text(BAD_ISSUE, encoding="utf-8")
    result = run("build", "issues/a", "issues/b", "--out", "out")
    assert result.exit_code == 1
    assert "date: '2026-13-40' is not a valid date" in result.stderr
    assert result.stdout.splitlines()[-1] == "1 built, 1 failed"
    assert (project / "out" / "a" / "email.html").is_file()
    worse = run("build", "issues/a", "issues/b", "issues/nowhere", "--out", "out")
    assert worse.exit_code == 2  # a usage error outranks a content error
    assert "issues/nowhere: no such issue folder" in worse.stderr
    assert "is not a valid date" in worse.stderr
    assert worse.stdout.splitlines()[-1] == "1 built, 2 failed"


def test_export_several_issues_and_all(project: Path) -> None:
    result = run("export", "--all", "--format", "html")
    assert result.exit_code == 0, result.output
    assert (project / "build" / "a" / "export.html").is_file()
    assert (project / "build" / "b" / "export.html").is_file()
    refused = run("export", "issues/a", "issues/b", "--format", "html", "--out", "x.html")
    assert refused.exit_code == 2
    assert "--out names one file" in refused.stderr


def test_an_issue_named_twice_is_done_once(project: Path) -> None:
    result = run("build", "issues/a", "issues/a/", "--out", "out")
    assert result.exit_code == 0
    assert result.stdout.count("built a:") == 1


# ------------------------------------------------------------------ plurals
def test_plural() -> None:
    assert [plural(n, "issue") for n in (0, 1, 2, 1000)] == [
        "0 issues",
        "1 issue",
        "2 issues",
        "1,000 issues",
    ]
    assert plural(1, "copy", "copies") == "1 copy" and plural(3, "copy", "copies") == "3 copies"


def test_counts_of_one_are_singular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_project(tmp_path, config=PROJECT_YAML + "base_url: https://example.org/news/\n")
    monkeypatch.chdir(tmp_path)
    archive = run("archive")
    assert archive.exit_code == 0, archive.output
    assert "archive: 1 issue, " in archive.output
    checked = run("check", "issues/test")
    singular_wrong = re.compile(r"\b1 (issues|images|links|errors|warnings|notes|problems)\b")
    assert not singular_wrong.search(checked.output), checked.output
    assert re.search(r"\b0 errors\b", checked.output)


# ------------------------------------------------------------------ the same limits
def _mirrors() -> list[tuple[str, str, type, str]]:
    """(command, option, settings class, field): options that set what a setting sets."""
    mirrored = {
        "send": [settings.SmtpProfile, settings.Deferrals],
        "bounces": [settings.Bounces],
        "serve": [settings.Unsubscribe],
    }
    found = []
    for name, classes in mirrored.items():
        for param in commands()[name].params:
            if not isinstance(param, click.Option) or not isinstance(
                param.type, (click.IntRange, click.FloatRange)
            ):
                continue
            field = (param.name or "").removeprefix("smtp_")
            for cls in classes:
                if field in {f.name for f in dataclasses.fields(cls)}:
                    found.append((name, param.name or "", cls, field))
    return found


@pytest.mark.parametrize(
    ("command", "option", "cls", "field"),
    _mirrors(),
    ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", ""),
)
def test_an_option_has_the_limits_of_its_setting(
    command: str, option: str, cls: type, field: str
) -> None:
    param = next(p for p in commands()[command].params if p.name == option)
    assert isinstance(param.type, (click.IntRange, click.FloatRange))
    meta = next(f for f in dataclasses.fields(cls) if f.name == field).metadata
    assert (param.type.min, param.type.max) == (meta.get("min"), meta.get("max")), (
        f"dispatch {command} --{option.replace('_', '-')}: "
        f"{param.type.min}–{param.type.max}, but {cls.__name__}.{field}: "
        f"{meta.get('min')}–{meta.get('max')}"
    )


def test_the_mirrored_options_are_found() -> None:
    assert {(c, o) for c, o, _cls, _f in _mirrors()} >= {
        ("send", "concurrency"),
        ("send", "smtp_port"),
        ("send", "timeout"),
    }


# ------------------------------------------------------------------ settings not used
SMTP_BAD = """\
smtp:
  default:
    host: mail.example.org
    concurrency: 100
"""


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_bad_smtp_setting_warns_build_and_stops_send(project: Path) -> None:
    config = project / "dispatch.yaml"
    config.write_text(PROJECT_YAML + SMTP_BAD, encoding="utf-8")
    line = _line_of(config, "concurrency: 100")
    problem = f"dispatch.yaml:{line}:18: smtp.default.concurrency: 100 is out of range (1 to 64)"
    for args in (
        ("build", "issues/a", "--out", "out"),
        ("build", "--all", "--out", "out"),
        ("check", "issues/a"),
        ("check", "--all"),
        ("export", "issues/a", "--format", "html"),
        ("export", "--all", "--format", "html"),
        ("archive",),
    ):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
        warning = f"warning: {problem} (not used by {args[0]})"
        assert result.stderr.splitlines().count(warning) == 1, (args, result.stderr)
    sent = run("send", "issues/a", "--to", "someone@example.org", "--dry-run", "out.mbox")
    assert sent.exit_code == 1
    assert f"error: {problem}" in sent.stderr.splitlines()
    assert "(not used by" not in sent.stderr


def test_problems_in_used_and_unused_sections(project: Path) -> None:
    config = project / "dispatch.yaml"
    text = PROJECT_YAML.replace("name: Test News", "name: [not, text]")
    config.write_text(text + "lists:\n  members:\n    csv: [1]\n", encoding="utf-8")
    result = run("build", "issues/a", "--out", "out")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: dispatch.yaml:1:7: name: expected text, got a list"]
    assert any(
        line.startswith("warning: dispatch.yaml:")
        and "lists.members.csv" in line
        and line.endswith("(not used by build)")
        for line in result.stderr.splitlines()
    ), result.stderr


def test_a_bad_list_does_not_block_build_all(project: Path) -> None:
    config = project / "dispatch.yaml"
    config.write_text(PROJECT_YAML + "lists:\n  members:\n    nothing: 1\n", encoding="utf-8")
    result = run("build", "--all", "--out", "out")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2 built, 0 failed"
    assert "lists.members.nothing: unknown key" in result.stderr


# ------------------------------------------------------------------ --open
def _preview_lines(cwd: Path, env: dict[str, str], *args: str, until: str) -> list[str]:
    """Start `dispatch preview`, read its lines until one contains ``until``, then Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch_mail.cli", "preview", "--port", "0", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in proc.stdout],  # type: ignore[union-attr]
        daemon=True,
    ).start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + WAIT
        while not any(until in line for line in output) and time.monotonic() < deadline:
            try:
                output.append(lines.get(timeout=max(deadline - time.monotonic(), 0.01)).rstrip())
            except queue.Empty:
                break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return output


def _url(lines: list[str]) -> str:
    line = next(line for line in lines if line.startswith("previewing "))
    return re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)  # type: ignore[union-attr]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display rule is Linux's")
def test_open_without_a_display_says_so(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    lines = _preview_lines(project, env, "issues/a", "--open", until="open a browser")
    url = _url(lines)
    assert f"could not open a browser here; open {url} yourself" in lines, lines


def test_open_says_which_address_it_opened(project: Path, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n', encoding="utf-8")
    browser.chmod(0o755)
    env = {**os.environ, "DISPLAY": ":0", "BROWSER": str(browser)}
    lines = _preview_lines(project, env, "issues/a", "--open", until="in your browser")
    url = _url(lines)
    assert f"opened {url} in your browser" in lines, lines
    assert opened.read_text(encoding="utf-8") == url


def test_a_bad_smtp_setting_does_not_stop_preview(project: Path) -> None:
    config = project / "dispatch.yaml"
    config.write_text(PROJECT_YAML + SMTP_BAD, encoding="utf-8")
    lines = _preview_lines(project, dict(os.environ), until="previewing ")
    assert any(line.startswith("previewing 2 issues at http://127.0.0.1:") for line in lines)
    assert any(
        line.startswith("warning: dispatch.yaml:")
        and "smtp.default.concurrency" in line
        and line.endswith("(not used by preview)")
        for line in lines
    ), lines
