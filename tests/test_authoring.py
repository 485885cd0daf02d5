"""`dispatch new` dates issues from their slug and guesses the next one; placeholder links are
flagged by build and check and refused by a list send; `dispatch add` by hand, and offline."""

from __future__ import annotations

import json
import re
import socket
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.authoring.periods import next_period, parse_period
from dispatch_mail.authoring.scaffold import new_issue
from dispatch_mail.cli import main
from dispatch_mail.project.loader import load
from tests.helpers.project import Project
from tests.helpers.send import invoke


@pytest.fixture
def newsletter(tmp_path, monkeypatch):
    """A project as `dispatch init` makes it, its first issue named for December 2026."""
    monkeypatch.chdir(tmp_path)
    result = run("init", "news")
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "news")
    root = tmp_path / "news"
    first = next((root / "issues").iterdir())
    first.rename(root / "issues" / "2026-12")
    return root


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def manifest(root: Path, slug: str) -> str:
    return (root / "issues" / slug / "issue.yaml").read_text(encoding="utf-8")


# ------------------------------------------------------------------ dates from slugs
@pytest.mark.parametrize(
    ("slug", "name", "day"),
    [
        ("2027-01", "January 2027", "2027-01-01"),
        ("2027-q3", "Q3 2027", "2027-07-01"),
        ("2027-w05", "Week 5, 2027", "2027-02-01"),  # ISO week 5 of 2027 starts Monday 1 Feb
        ("2026-w01", "Week 1, 2026", "2025-12-29"),  # ISO week 1 can start in the year before
        ("2027-01-04", "4 January 2027", "2027-01-04"),
    ],
)
def test_new_dates_the_issue_from_its_slug(newsletter, slug, name, day):
    result = run("new", slug)
    assert result.exit_code == 0, result.output
    assert f"dated {day}" in result.output
    text = manifest(newsletter, slug)
    assert f'name: "{name}"' in text and f"\ndate: {day}\n" in text
    assert f"Example Newsletter: {name}" in text  # the subject follows the name


def test_a_slug_that_names_no_period_is_dated_today(newsletter):
    started = new_issue("summer-special", newsletter, today=date(2027, 6, 3))
    assert started.date == date(2027, 6, 3) and started.guess is None
    text = manifest(newsletter, "summer-special")
    assert 'name: "summer-special"' in text and "\ndate: 2027-06-03\n" in text


@pytest.mark.parametrize("slug", ["2027-13", "2027-q5", "2027-w54", "2027-02-30"])
def test_impossible_periods_name_no_period(slug):
    assert parse_period(slug) is None


def test_new_still_refuses_what_exists_and_bad_names(newsletter):
    assert run("new", "2027-01").exit_code == 0
    again = run("new", "2027-01")
    assert again.exit_code == 2 and "exists already" in again.output
    assert run("new", "../escape").exit_code == 2


# ------------------------------------------------------------------ the next period, guessed
def test_new_without_a_slug_takes_the_month_after_the_last_issue_and_says_so(newsletter):
    result = run("new")
    assert result.exit_code == 0, result.output
    assert "new issue 2027-01 (monthly, after 2026-12): issues/2027-01/" in result.output
    assert "\ndate: 2027-01-01\n" in manifest(newsletter, "2027-01")
    # the draft just made is the last issue now, even though it does not build yet
    result = run("new")
    assert "new issue 2027-02 (monthly, after 2027-01): issues/2027-02/" in result.output
    assert 'name: "February 2027"' in manifest(newsletter, "2027-02")


@pytest.mark.parametrize(
    ("issues", "slug", "cadence"),
    [
        ([("2026-q4", date(2026, 10, 1))], "2027-q1", "quarterly"),
        ([("2026-w52", date(2026, 12, 21))], "2026-w53", "weekly"),  # 2026 has 53 ISO weeks
        ([("2026-w53", date(2026, 12, 28))], "2027-w01", "weekly"),
        ([("2027-01-04", date(2027, 1, 4)), ("2027-01-11", date(2027, 1, 11))], "2027-01-18",
         "weekly"),
        ([("2027-01-04", date(2027, 1, 4)), ("2027-01-18", date(2027, 1, 18))], "2027-02-01",
         "fortnightly"),
        # slugs that name no period: the gap between the last two dates says the cadence
        ([("one", date(2027, 1, 5)), ("two", date(2027, 1, 12))], "2027-w03", "weekly"),
        ([("one", date(2027, 1, 5)), ("two", date(2027, 2, 3))], "2027-03", "monthly"),
        ([("one", date(2026, 10, 2)), ("two", date(2027, 1, 6))], "2027-q2", "quarterly"),
    ],
)
def test_the_cadence_the_issues_show(issues, slug, cadence):
    guess = next_period(issues)
    assert (guess.period.slug, guess.cadence, guess.after) == (slug, cadence, issues[-1][0])


def test_a_cadence_that_cannot_be_told_asks_for_the_slug(tmp_path, monkeypatch):
    project = Project(tmp_path / "news")  # one issue, named 'one'
    monkeypatch.chdir(project.root)
    result = run("new")
    assert result.exit_code == 2
    assert "cannot tell" in result.output and "dispatch new 2027-01" in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ placeholders
def test_the_first_issue_builds_and_names_each_placeholder_where_it_is(newsletter):
    result = run("build", "issues/2026-12")
    assert result.exit_code == 0, result.output
    text = manifest(newsletter, "2026-12").splitlines()
    found = re.findall(
        r"warning: (issues/2026-12/issue.yaml):(\d+):(\d+): (\S+): placeholder left to fill",
        result.output,
    )
    assert [key for *_, key in found] == [
        "sections[0].items[0].url",
        "sections[1].items[0].url",
        "sections[2].button.url",
    ]
    for _, line, column, _ in found:  # each names the very line and column of the link
        assert text[int(line) - 1][int(column) - 1 :].startswith("https://example.invalid/")


def test_check_reports_placeholders_with_a_documented_code(newsletter):
    result = run("check", "issues/2026-12", "--format", "json")
    (report,) = json.loads(result.output)
    findings = [f for f in report["findings"] if f["code"] == "manifest.placeholder"]
    assert len(findings) == 3
    assert all(f["level"] == "warning" for f in findings)
    assert "`manifest.placeholder`" in (Path(__file__).parents[1] / "docs/checks.md").read_text()


def test_new_marks_example_links_it_copies_as_placeholders(newsletter):
    cta = manifest(newsletter, "2026-12").replace(
        "https://example.invalid/your-community-page", "https://example.org/community"
    )
    (newsletter / "issues/2026-12/issue.yaml").write_text(cta.replace("example.invalid/", "x.org/"))
    assert run("new", "2027-01").exit_code == 0
    text = manifest(newsletter, "2027-01")
    assert "example.org/community" not in text
    assert "url: https://example.invalid/replace-this-link" in text
    assert "Join the community" in text  # the call to action itself carries over


def test_new_keeps_a_real_call_to_action_link(newsletter):
    text = manifest(newsletter, "2026-12").replace(
        "https://example.invalid/your-community-page", "https://community.dpdk.org/join"
    )
    (newsletter / "issues/2026-12/issue.yaml").write_text(text)
    assert run("new", "2027-01").exit_code == 0
    assert "url: https://community.dpdk.org/join" in manifest(newsletter, "2027-01")


def test_new_replaces_a_featured_events_links_and_writes_one_header(newsletter):
    text = manifest(newsletter, "2026-12").replace(
        "sections:\n",
        "sections:\n"
        "  - kind: featured\n"
        "    title: Summit 2026\n"
        "    summary: Two days in Stockholm.\n"
        "    action: {label: Register, url: 'https://events.dpdk.org/summit-2026'}\n",
    )
    (newsletter / "issues/2026-12/issue.yaml").write_text(text)
    assert run("new", "2027-01").exit_code == 0
    from_draft = run("new", "2027-02", "--from", "issues/2027-01")
    assert from_draft.exit_code == 1 and "must not be empty" in from_draft.output  # no start
    new = manifest(newsletter, "2027-01")
    assert "summit-2026" not in new and "https://example.invalid/the-featured-link" in new
    assert new.count("by `dispatch new`") == 1


def test_a_list_send_refuses_placeholders_and_sends_nothing(project, monkeypatch, server):
    project.change_content("'[Read it](https://example.invalid/the-post)'")
    monkeypatch.chdir(project.root)
    listing = project.csv([("ann@example.com", "Ann")])
    result = invoke(
        "send", str(project.issue_dir), "--list", str(listing), "--yes", *server.cli_args()
    )
    assert result.exit_code == 1, result.output
    assert (
        "issues/one/issue.yaml:12:9: sections[0].items[0]: placeholder left to fill "
        "(a send to a list refuses it)" in result.stderr
    ), result.stderr
    assert server.messages == []
    # a test copy still goes: reviewing a draft is what tests are for
    test = invoke("send", str(project.issue_dir), "--to", "me@example.com", *server.cli_args())
    assert test.exit_code == 0, test.output
    assert [m.recipient for m in server.messages] == ["me@example.com"]


# ------------------------------------------------------------------ dispatch add, by hand
def test_add_by_hand_fetches_nothing_and_keeps_the_note_as_written(newsletter):
    issue = newsletter / "issues/2026-12"
    result = run(
        "add", issue, "--title", "Release  notes", "--url", "https://dpdk.org/notes",
        "--note", "What *changed*, and why.", "--section", "Reading list",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "added 'Release notes' to Reading list" in result.output
    _, model = load(issue)
    item = model.sections[1].items[-1]
    assert (item.title.plain, item.url) == ("Release notes", "https://dpdk.org/notes")
    assert "note: What *changed*, and why." in manifest(newsletter, "2026-12")
    assert run("build", issue).exit_code == 0
    html = (newsletter / "build/2026-12/email.html").read_text()
    assert "What <em>changed</em>, and why." in html


def test_add_by_hand_to_every_kind_of_section(newsletter):
    issue = newsletter / "issues/2026-12"
    run("add", issue, "https://dpdk.org/story", "--title", "A story", "--note", "Told.",
        "--section", "stories")  # fmt: skip
    run("add", issue, "--title", "No note [yet]", "--url", "https://dpdk.org/x")
    text = manifest(newsletter, "2026-12")
    assert "title: A story" in text and "summary: Told." in text
    built = run("build", issue)
    assert "sections[1].items[1].note: must not be empty" in built.output  # left to write


def test_add_by_hand_refuses_what_it_cannot_add(newsletter):
    issue = newsletter / "issues/2026-12"
    before = manifest(newsletter, "2026-12")
    for args, message in (
        (["--title", "x"], "needs its link"),
        (["--url", "https://dpdk.org/"], "give its --title too"),
        (["--note", "only a note"], "give its --title too"),
        (["--title", "x", "--url", "javascript:alert(1)"], "not allowed"),
        (["https://a.org/", "--title", "x", "--url", "https://b.org/"], "two URLs given"),
        ([], "give the URL to fetch"),
    ):
        result = run("add", issue, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
    assert manifest(newsletter, "2026-12") == before


def test_offline_the_fetch_error_says_to_add_it_by_hand(newsletter, monkeypatch):
    def offline(host, *args, **kwargs):
        # what the resolver answers with no network; no DNS query leaves this machine
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    result = run("add", "issues/2026-12", "https://example.org/post")
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line == (
        "error: cannot fetch https://example.org/post: the name example.org could not be "
        'resolved (offline?); add it by hand with --title "…" --url https://example.org/post '
        '[--note "…"]'
    )


def test_a_closed_port_also_says_to_add_it_by_hand(newsletter):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/"
    result = run("add", "issues/2026-12", url, "--allow-private")
    assert result.exit_code == 1
    assert "check the URL or your connection" in result.output
    assert f"add it by hand with --title \"…\" --url {url}" in result.output
