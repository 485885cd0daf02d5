"""Issue folder names as slugs: the real command builds each or says in one located line why not.

The folder's name becomes ``build/<slug>/``, the archive's ``<slug>/index.html``, the
issue's links and part of its Message-ID; `été 2026` once ended in a UnicodeEncodeError.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.helpers.project import ISSUE_YAML, PROJECT_YAML, create_project
from tests.helpers.send import run

CONFIG = PROJECT_YAML + "base_url: https://example.org/news/\n"
ATOM = "{http://www.w3.org/2005/Atom}"
OUTPUTS = ["email.eml", "email.html", "email.mjml", "email.txt"]

USABLE = [
    "été 2026",
    "with space",
    "quo'te\"s",
    "a..b",
    ".hidden",
    "-dash",
    "a#b?c",
    "%41",
    "x" * 200,
    "é" * 127,  # 254 bytes: as long as a name may be on most file systems
    "עברית 2026",  # right-to-left text itself is fine; only the invisible overrides are not
]
# (folder name, how the error spells its bad character)
UNUSABLE = [
    ("ctl\x01x", "\\x01"),
    ("tab\tname", "\\x09"),
    ("line\nbreak", "\\x0a"),
    ("esc\x1b[31mred", "\\x1b"),
    ("del\x7fx", "\\x7f"),
    ("c1\x85x", "\\x85"),
    ("rtl\u202eevil", "\\u202e"),
    ("iso\u2066x", "\\u2066"),
    (os.fsdecode(b"bad\xffname"), "\\xff"),  # not UTF-8: Python keeps the byte as a surrogate
]


def one_problem(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    """Exit 1, one located ``error:`` line holding every part, then the summary."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "internal error" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: issues/"), lines
    assert lines[1] == "1 problem found; nothing was written"
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


class Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if name == "href" and value]


def target(page_dir: Path, href: str) -> Path:
    """Where a browser goes from ``page_dir`` following the relative ``href``."""
    return page_dir / unquote(urlsplit(href).path)


# ------------------------------------------------------------------ build
@pytest.mark.parametrize("slug", USABLE)
def test_unusual_names_build(tmp_path: Path, slug: str) -> None:
    project = create_project(tmp_path / "news", config=CONFIG, issues={slug: ISSUE_YAML})

    result = run(["build", f"issues/{slug}"], project)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"built {slug}: ")
    out = project / "build" / slug
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    raw = (out / "email.eml").read_bytes()
    assert all(len(line) <= 998 for line in raw.splitlines())  # RFC 5322's hard limit
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert re.fullmatch(
        r"<[A-Za-z0-9_-]+\.[a-z]+\.\d+\.[0-9a-f]+@example\.org>", message["Message-ID"]
    )


@pytest.mark.parametrize(("slug", "spelled"), UNUSABLE)
def test_names_that_cannot_be_slugs_get_one_located_error(
    tmp_path: Path, slug: str, spelled: str
) -> None:
    project = create_project(tmp_path / "news", config=CONFIG, issues={})
    folder = os.path.join(os.fsencode(project / "issues"), os.fsencode(slug))
    os.makedirs(folder)
    Path(os.fsdecode(os.path.join(folder, b"issue.yaml"))).write_text(ISSUE_YAML, encoding="utf-8")

    result = run(["build", os.fsdecode(folder)], project)

    line = one_problem(result, spelled, "rename the folder")
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", line)
    assert not (project / "build").exists()


# ------------------------------------------------------------------ archive
@pytest.mark.parametrize("slug", ["feed.xml", "index.html", ".dispatch-archive", "Feed.XML"])
def test_archive_refuses_names_of_its_own_files(tmp_path: Path, slug: str) -> None:
    project = create_project(tmp_path / "news", config=CONFIG)
    assert run(["archive"], project).returncode == 0
    site = project / "site"
    before = {str(p.relative_to(site)): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    create_project(project, config=CONFIG, issues={slug: ISSUE_YAML})

    result = run(["archive"], project)

    one_problem(result, f"issues/{slug}: ", "rename the folder")
    after = {str(p.relative_to(site)): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize(("one", "other"), [("Q1", "q1"), ("\u00e9t\u00e9", "e\u0301te\u0301")])
def test_archive_refuses_names_equal_but_for_case_or_encoding(
    tmp_path: Path, one: str, other: str
) -> None:
    project = create_project(tmp_path / "news", issues={one: ISSUE_YAML, other: ISSUE_YAML})
    assert sorted(p.name for p in (project / "issues").iterdir()) == sorted([one, other])

    result = run(["archive"], project)

    one_problem(result, "only in case or in how its accents are encoded")
    assert not (project / "site").exists()


def test_archive_links_reach_every_page_whatever_the_names(tmp_path: Path) -> None:
    slugs = ["été 2026", "a#b?c", "%41", "with space", "quo'te\"s", "עברית 2026"]
    project = create_project(tmp_path / "news", issues=dict.fromkeys(slugs, ISSUE_YAML))

    result = run(["archive"], project)

    assert result.returncode == 0, result.stderr
    site = project / "site"
    parser = Hrefs()
    parser.feed((site / "index.html").read_text(encoding="utf-8"))
    pages = {target(site, h) for h in parser.hrefs if h.endswith("/index.html")}
    assert pages == {site / slug / "index.html" for slug in slugs}
    assert all(page.is_file() for page in pages)
    feed = ET.parse(site / "feed.xml").getroot()
    links = [e.find(f"{ATOM}link") for e in feed.iter(f"{ATOM}entry")]
    folders = {target(site, link.get("href", "")) for link in links if link is not None}
    assert folders == {site / slug for slug in slugs}


# ------------------------------------------------------------------ where outputs go
@pytest.mark.parametrize("fmt", ["eml", "mbox", "html", "zip"])
def test_export_under_a_file_is_one_plain_error(tmp_path: Path, fmt: str) -> None:
    project = create_project(tmp_path / "news")

    result = run(["export", "issues/test", "--format", fmt, "--out", f"/dev/null/x.{fmt}"], project)

    assert result.returncode == 1, result.stderr
    assert "internal error" not in result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"error: cannot write /dev/null/x.{fmt}: /dev/null is not a folder"
    ]


def test_build_where_a_file_holds_the_folder_name_is_one_plain_error(tmp_path: Path) -> None:
    project = create_project(tmp_path / "news")
    (project / "build").mkdir()
    (project / "build" / "test").write_bytes(b"a file, not a folder")

    result = run(["build", "issues/test"], project)

    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        "error: cannot write build/test/email.html: build/test is not a folder"
    ]
    assert (project / "build" / "test").read_bytes() == b"a file, not a folder"
