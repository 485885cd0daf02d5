"""`dispatch build` end to end: click's CliRunner on real projects, and once as a real process."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dispatch_mail.cli import main
from dispatch_mail.publish.build import OUTPUT_NAMES, build_issue
from tests.helpers.network import NetworkBlocked
from tests.helpers.project import ISSUE_YAML

REPO = Path(__file__).resolve().parent.parent
BAD_ISSUE = """\
subject: Test issue
name: Issue 1
date: 2026-02-30
masthead:
  headline: Hello
  dekk: Typo
sections:
  - kind: links
    items:
      - text: A link
        url: javascript:alert(1)
"""
BAD_LINES = [
    "error: issues/test/issue.yaml:3:7: date: '2026-02-30' is not a valid date (use YYYY-MM-DD)",
    "error: issues/test/issue.yaml:6:3: masthead.dekk: unknown key (did you mean 'dek'?)",
    "error: issues/test/issue.yaml:11:14: sections[0].items[0].url: "
    "'javascript:' links are not allowed (only http, https and mailto)",
    "3 problems found; nothing was written",
]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# ------------------------------------------------------------------ a good build
def test_build_writes_the_four_files_and_prints_a_summary(write_project, tmp_path):
    write_project()
    result = run("build", "issues/test", "--out", "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUT_NAMES)
    assert all((tmp_path / "out" / name).stat().st_size > 0 for name in OUTPUT_NAMES)
    summary = result.stdout.splitlines()
    assert summary[0].startswith("built test: ") and summary[0].endswith(" → out/")
    assert summary[1].startswith("  email.html ") and "email.eml" in summary[1]
    assert summary[2:] == [
        "  warning: no preheader: inboxes will show the first words of the email instead"
    ]
    assert result.stderr == ""


def test_the_summary_counts_sections_and_links(write_project):
    write_project(
        ISSUE_YAML.replace(
            "Something happened.",
            "'[One](https://example.org/1) and [two](https://example.org/2).'",
        )
    )
    assert (
        run("build", "issues/test", "--out", "out").stdout.splitlines()[0]
        == "built test: 1 section, 3 links → out/"
    )


def test_build_without_out_writes_into_the_projects_build_folder(
    write_project, tmp_path, monkeypatch
):
    write_project()
    monkeypatch.chdir(tmp_path / "issues")  # the project is found from a sub-folder too
    result = run("build", "test")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "build" / "test").iterdir()) == sorted(OUTPUT_NAMES)


def test_the_manifest_file_itself_may_be_named(write_project, tmp_path):
    write_project()
    assert run("build", "issues/test/issue.yaml", "--out", "out").exit_code == 0
    assert (tmp_path / "out" / "email.eml").is_file()


def test_quiet_prints_only_warnings_and_the_summary_line(write_project):
    write_project()
    result = run("build", "issues/test", "--out", "out", "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "built test: 1 section, 1 link → out/\n"  # no file sizes
    assert (
        result.stderr
        == "warning: no preheader: inboxes will show the first words of the email instead\n"
    )


def test_output_files_get_the_usual_permissions(write_project, tmp_path):
    write_project()
    umask = os.umask(0o022)
    try:
        assert run("build", "issues/test", "--out", "out").exit_code == 0
    finally:
        os.umask(umask)
    modes = {name: stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) for name in OUTPUT_NAMES}
    assert modes == dict.fromkeys(OUTPUT_NAMES, 0o644), (
        "readable like any file the user creates (a web server serves them)"
    )


# ------------------------------------------------------------------ a bad manifest
def test_a_bad_manifest_exits_1_with_one_line_per_problem(write_project, tmp_path):
    write_project(BAD_ISSUE)
    result = run("build", "issues/test", "--out", "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == BAD_LINES
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_a_failed_build_leaves_earlier_output_untouched(write_project, tmp_path):
    write_project()
    assert run("build", "issues/test", "--out", "out").exit_code == 0
    before = {
        name: ((tmp_path / "out" / name).read_bytes(), (tmp_path / "out" / name).stat().st_mtime_ns)
        for name in OUTPUT_NAMES
    }
    write_project(BAD_ISSUE)
    assert run("build", "issues/test", "--out", "out").exit_code == 1
    after = {
        name: ((tmp_path / "out" / name).read_bytes(), (tmp_path / "out" / name).stat().st_mtime_ns)
        for name in OUTPUT_NAMES
    }
    assert after == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUT_NAMES), (
        "no temporary file left behind"
    )


def test_a_render_error_writes_nothing_either(write_project, tmp_path):
    write_project(templates={"footer.mjml.j2": '{% include "../../etc/passwd" %}'})
    result = run("build", "issues/test", "--out", "out")
    assert result.exit_code == 1
    assert result.stderr == "error: template not found: ../../etc/passwd\n"
    assert not (tmp_path / "out").exists()


def test_problems_of_both_files_are_printed_together(write_project):
    write_project(BAD_ISSUE, "name: Test News\nsender: nobody\n")
    result = run("build", "issues/test", "--out", "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: dispatch.yaml:1:1: footer: missing (required mapping)",
        "error: dispatch.yaml:2:9: sender: expected a mapping, got 'nobody'",
        *BAD_LINES[:-1],
        "5 problems found; nothing was written",
    ]


# ------------------------------------------------------------------ usage errors
def test_a_missing_issue_folder_is_a_usage_error(write_project):
    write_project()
    result = run("build", "issues/nope")
    assert result.exit_code == 2
    assert result.stderr == "error: issues/nope: no such issue folder\n"


def test_a_folder_without_a_manifest_is_a_usage_error(write_project, tmp_path):
    write_project()
    (tmp_path / "issues" / "empty").mkdir()
    result = run("build", "issues/empty")
    assert result.exit_code == 2
    assert result.stderr == "error: issues/empty: no issue.yaml in this folder\n"


def test_no_project_file_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lonely").mkdir()
    (tmp_path / "lonely" / "issue.yaml").write_text(ISSUE_YAML)
    result = run("build", "lonely")
    assert result.exit_code == 2
    assert "no dispatch.yaml here or in any parent folder" in result.stderr


def test_no_folder_and_no_all_is_a_usage_error(write_project):
    write_project()
    result = run("build")
    assert result.exit_code == 2
    assert result.stderr == "error: name an issue folder (e.g. issues/2026-q1) or use --all\n"


def test_an_unknown_option_is_a_usage_error(write_project):
    write_project()
    result = run("build", "issues/test", "--colour")
    assert result.exit_code == 2
    assert "No such option '--colour'" in result.stderr


# ------------------------------------------------------------------ --all
def test_build_all_on_the_repositorys_project(tmp_path):
    result = run("build", "--all", str(REPO), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2 built, 0 failed"
    for slug in ("2025-q4", "2026-q1"):
        assert sorted(p.name for p in (tmp_path / slug).iterdir()) == sorted(OUTPUT_NAMES)
        assert f"built {slug}: " in result.stdout


def test_build_all_on_the_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO / "examples")
    result = run("build", "--all", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "2 built, 0 failed"
    assert {p.name for p in tmp_path.iterdir()} == {"all-sections", "minimal"}
    assert (tmp_path / "all-sections" / "email.eml").stat().st_size > 10_000


def test_build_all_builds_the_good_issues_and_fails_for_the_bad(write_project, tmp_path):
    write_project(slug="good")
    write_project(BAD_ISSUE, slug="test")
    result = run("build", "--all", "--out", "out")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "1 built, 1 failed"
    assert result.stderr.splitlines() == BAD_LINES[:-1]
    assert (tmp_path / "out" / "good" / "email.html").is_file()
    assert not (tmp_path / "out" / "test").exists()


# ------------------------------------------------------------------ a real process
def dispatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("DISPATCH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "dispatch_mail.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_real_process_builds_and_exits_0(tmp_path):
    proc = dispatch("build", "issues/2026-q1", "--out", str(tmp_path / "q1"), cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.startswith("built 2026-q1: 5 sections, ")
    assert (tmp_path / "q1" / "email.eml").read_bytes() != b""


@pytest.mark.parametrize(
    "manifest, code, first",
    [
        (BAD_ISSUE, 1, BAD_LINES[0]),
        (b"subject: " + b"[" * 100_000 + b"]" * 100_000, 1, "error: issues/test/issue.yaml:1:"),
        (b"\xff\xfe", 1, "error: issues/test/issue.yaml:1:1: file is not valid UTF-8"),
    ],
    ids=["bad-manifest", "deep-nesting", "not-utf8"],
)
def test_a_real_process_fails_cleanly(write_project, tmp_path, manifest, code, first):
    write_project(manifest)
    proc = dispatch("build", "issues/test", "--out", "out", cwd=tmp_path)
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert proc.stderr.splitlines()[0].startswith(first)
    assert not (tmp_path / "out").exists()


def test_a_real_process_reports_a_template_escape_without_a_traceback(write_project, tmp_path):
    write_project(templates={"footer.mjml.j2": '{% include "../../etc/passwd" %}'})
    proc = dispatch("build", "issues/test", "--out", "out", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (1, "error: template not found: ../../etc/passwd\n")


def test_the_console_script_runs_too(tmp_path):
    script = Path(sys.executable).with_name("dispatch")
    if not script.exists():
        pytest.skip("the dispatch console script is not installed beside this Python")
    proc = subprocess.run(
        [str(script), "build", "--all", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert proc.stdout.splitlines()[-1] == "2 built, 0 failed"


# ------------------------------------------------------------------ the guard of this suite
def test_the_network_guard_refuses_other_machines_and_allows_loopback():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with socket.socket() as sock, pytest.raises(NetworkBlocked):
        sock.connect(("198.51.100.7", 443))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


def test_a_build_needs_no_network(tmp_path):
    # the guard is on: any connection a build tried (fonts, images, stylesheets) would raise
    result = build_issue(REPO / "examples" / "all-sections", tmp_path)
    assert result.files["email.html"] > 0
