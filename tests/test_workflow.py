"""The owner's workflow end to end: init → build → new → add (from a local web server) → export."""

from __future__ import annotations

import email
import email.policy
import mailbox
import zipfile

import pytest
from click.testing import CliRunner

from dispatch_mail.cli import main
from dispatch_mail.project.loader import load
from tests.helpers.http_server import Reply

PAGES = {
    "/og": (
        "text/html",
        '<html><head><title>Fallback</title><meta property="og:title" content="The OG title">'
        '<meta property="og:description" content="What the page says, from OpenGraph.">'
        '<meta property="og:site_name" content="Example Site"></head><body></body></html>',
    ),
    "/twitter": (
        "text/html",
        '<html><head><meta name="twitter:title" content="Twitter title">'
        '<meta name="twitter:description" content="From the Twitter card."></head></html>',
    ),
    "/plain": (
        "text/html",
        "<html><head><title>  Just a\n title </title>"
        '<meta name="description" content="Meta description."></head></html>',
    ),
    "/bare": ("text/html", "<html><head><title>No description here</title></head></html>"),
    "/pdf": ("application/pdf", "%PDF-1.4"),
}


REDIRECTS = {"/redirect": "/og", "/loop": "/loop", "/to-ftp": "ftp://example.org/x"}


def _page(method: str, path: str) -> Reply:
    if path in REDIRECTS:
        return Reply(302, headers={"Location": REDIRECTS[path]})
    if path == "/slow":  # far past the timeout, which is far past a quick answer
        return Reply(200, delay=60)
    if path in PAGES:
        kind, body = PAGES[path]
        return Reply(200, body.encode(), {"Content-Type": f"{kind}; charset=utf-8"})
    return Reply(404)


@pytest.fixture
def web(http_server):
    return http_server(_page).url


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "news", "--name", 'Our "News": Weekly'])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "news")
    return tmp_path / "news"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_init_creates_a_project_that_builds(project):
    for name in (
        "dispatch.yaml",
        "templates/README.md",
        ".gitignore",
        ".github/workflows/newsletter.yml",
        "lists/suppressed.csv",
    ):
        assert (project / name).is_file(), name
    assert "# " in (project / "dispatch.yaml").read_text()  # commented settings
    result = run("build", "--all")
    assert result.exit_code == 0, result.output
    _, issue = load(next((project / "issues").iterdir()))
    assert issue.subject.startswith('Our "News": Weekly: ')


def test_init_refuses_to_overwrite_and_writes_nothing(project):
    (project / "issues").rename(project / "elsewhere")
    before = (project / "dispatch.yaml").read_text()
    result = run("init", ".")
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.output and "dispatch.yaml" in result.output
    assert not (project / "issues").exists()  # not even the files that did not exist
    assert (project / "dispatch.yaml").read_text() == before


def test_new_copies_structure_and_empties_items(project):
    result = run("new", "2030-q2")
    assert result.exit_code == 0, result.output
    text = (project / "issues/2030-q2/issue.yaml").read_text()
    assert "Q2 2030" in text and "\ndate: 2030-04-01\n" in text  # the quarter's first day
    assert "kicker: Community Spotlight" in text  # kickers kept
    assert "Join the community" in text  # the call to action carried over
    assert "items: []" in text
    built = run("build", "issues/2030-q2")
    assert built.exit_code == 1
    assert "sections[0].items[0].title: must not be empty" in built.output
    assert run("new", "2030-q2").exit_code == 2  # exists already


def test_new_rejects_bad_slug(project):
    result = run("new", "../escape")
    assert result.exit_code == 2 and "not a usable issue name" in result.output


def test_add_reads_opengraph_and_keeps_comments(project, web):
    issue = next((project / "issues").iterdir())
    manifest = issue / "issue.yaml"
    manifest.write_text(manifest.read_text().replace("sections:", "# my own comment\nsections:"))
    result = run("add", issue, f"{web}/redirect", "--section", "Reading list", "--allow-private")
    assert result.exit_code == 0, result.output
    text = manifest.read_text()
    assert "# my own comment" in text
    _, model = load(issue)
    item = model.sections[1].items[-1]
    assert (item.title.plain, item.url, str(item.note), item.via) == (
        "The OG title",
        f"{web}/og",
        "What the page says, from OpenGraph.",
        "Example Site",
    )


def test_add_falls_back_to_twitter_and_title_tags(project, web):
    issue = next((project / "issues").iterdir())
    assert run("add", issue, f"{web}/twitter", "--allow-private").exit_code == 0
    added = run("add", issue, f"{web}/plain", "--section", "reading_list", "--allow-private")
    assert added.exit_code == 0
    _, model = load(issue)
    items = model.sections[1].items
    twitter = (items[-2].title.plain, str(items[-2].note))
    assert twitter == ("Twitter title", "From the Twitter card.")
    assert (items[-1].title.plain, str(items[-1].note)) == ("Just a title", "Meta description.")


def test_add_errors(project, web):
    issue = next((project / "issues").iterdir())
    before = (issue / "issue.yaml").read_text()
    for path, message in (
        ("/missing", "HTTP 404"),
        ("/pdf", "not an HTML page"),
        ("/loop", "redirects"),
        ("/to-ftp", "links are not allowed"),
        ("/slow", "timed out"),
    ):
        result = run("add", issue, f"{web}{path}", "--timeout", "5", "--allow-private")
        assert result.exit_code == 1, (path, result.output)
        assert message in result.output, (path, result.output)
        assert "Traceback" not in result.output
    assert run("add", issue, f"{web}/og", "--section", "nope").exit_code == 2
    assert run("add", issue, "javascript:alert(1)").exit_code == 1
    assert (issue / "issue.yaml").read_text() == before


def test_add_without_description_asks_for_text(project, web):
    issue = next((project / "issues").iterdir())
    result = run("add", issue, f"{web}/bare", "--allow-private")
    assert result.exit_code == 0
    assert "no description" in result.output
    built = run("build", issue)
    assert "note: must not be empty" in built.output


def test_export_formats(project, monkeypatch):
    issue = next((project / "issues").iterdir())
    out = project / "out"
    assert run("export", issue, "--format", "eml", "--out", out / "x.eml").exit_code == 0
    msg = email.message_from_bytes((out / "x.eml").read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert (
        run(
            "export",
            issue,
            "--format",
            "html",
            "--out",
            out / "x.html",
            "--unsubscribe-tag",
            "*|UNSUB|*",
        ).exit_code
        == 0
    )
    html = (out / "x.html").read_text()
    assert 'href="*|UNSUB|*"' in html and "<style" in html
    assert run("export", issue, "--format", "zip", "--out", out / "x.zip").exit_code == 0
    with zipfile.ZipFile(out / "x.zip") as archive:
        assert sorted(archive.namelist()) == ["README.txt", "email.eml", "email.txt", "index.html"]
    assert run("export", issue, "--format", "mbox", "--out", out / "x.mbox").exit_code == 0
    messages = list(mailbox.mbox(str(out / "x.mbox")))
    assert [m["To"] for m in messages] == ["editors@example.org"]
    assert messages[0]["X-Dispatch-Test"] == "yes"
    assert (
        run("export", issue, "--format", "html", "--unsubscribe-tag", 'x"><script>').exit_code == 2
    )
