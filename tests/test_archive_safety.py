"""`dispatch archive` replaces only what it wrote: real folders, real symbolic links, the real
command in a process of its own.

The reproduction: a Jekyll or Hugo ``_site/`` holds ``index.html`` and ``feed.xml`` like an
archive does; reached through a link named as the archive's folder, it was replaced whole,
the owner's files with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dispatch_mail.errors import UsageError
from dispatch_mail.publish.archive import build_archive
from dispatch_mail.publish.sitefolder import MARKER_NAME
from tests.helpers.project import create_project
from tests.helpers.send import run

PRECIOUS = b"the owner's words, nowhere else\n" * 50 + b"\x00\xff binary tail"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return create_project(tmp_path / "news")


@pytest.fixture
def other_site(tmp_path: Path) -> Path:
    """Another tool's output: the same two file names as an archive, and the owner's file."""
    site = tmp_path / "blog" / "_site"
    site.mkdir(parents=True)
    (site / "precious.txt").write_bytes(PRECIOUS)
    (site / "index.html").write_bytes(b"")
    (site / "feed.xml").write_bytes(b"")
    return site


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: a file's bytes, a link's target, a folder as '/'."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            found[name] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[name] = "/"
        else:
            found[name] = path.read_bytes()
    return found


def assert_one_error(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    """Exit 2 with one ``error:`` line holding every part; that line."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "internal error" not in result.stdout + result.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


# ------------------------------------------------------------------ the reproduction
def test_a_folder_reached_through_a_link_is_not_replaced(project: Path, other_site: Path) -> None:
    (project / "public").symlink_to(other_site)
    before = tree(other_site.parent)

    result = run(["archive", "--out", "public"], project)

    assert_one_error(
        result, "public: a symbolic link to", str(other_site), "not a dispatch archive"
    )
    assert (other_site / "precious.txt").read_bytes() == PRECIOUS
    assert tree(other_site.parent) == before  # nothing written beside it either
    assert (project / "public").is_symlink() and (project / "public").resolve() == other_site


def test_the_same_folder_named_directly_is_not_replaced(project: Path, other_site: Path) -> None:
    before = tree(other_site.parent)

    result = run(["archive", "--out", str(other_site)], project)

    line = assert_one_error(
        result, f"{other_site}: not a dispatch archive", MARKER_NAME, "precious.txt"
    )
    assert "delete it once" in line  # what to do with an archive from before the marker
    assert tree(other_site.parent) == before


def test_index_and_feed_alone_do_not_make_an_archive(project: Path, other_site: Path) -> None:
    (other_site / "precious.txt").unlink()  # just the two (empty) files that look like ours
    before = tree(other_site.parent)

    result = run(["archive", "--out", str(other_site)], project)

    assert_one_error(result, "not a dispatch archive", "feed.xml is not a feed dispatch wrote")
    assert tree(other_site.parent) == before


def test_a_link_to_an_empty_folder_is_refused(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (project / "public").symlink_to(empty)

    result = run(["archive", "--out", "public"], project)

    assert_one_error(result, "public: a symbolic link to", "not a dispatch archive")
    assert list(empty.iterdir()) == []


def test_the_library_refuses_with_a_usage_error(project: Path, other_site: Path) -> None:
    with pytest.raises(UsageError, match="not a dispatch archive") as caught:
        build_archive(project, other_site)
    assert caught.value.exit_code == 2
    assert (other_site / "precious.txt").read_bytes() == PRECIOUS


# ------------------------------------------------------------------ what is replaced
def test_the_first_archive_marks_its_folder_and_keeps_the_id(project: Path) -> None:
    first = run(["archive", "--out", "public"], project)
    assert first.returncode == 0, first.stderr
    marker = (project / "public" / MARKER_NAME).read_text(encoding="utf-8")
    version, archive_id = marker.splitlines()[0].split()[1:]
    assert version == "1" and len(archive_id) == 16

    second = run(["archive", "--out", "public"], project)

    assert second.returncode == 0, second.stderr
    again = (project / "public" / MARKER_NAME).read_text(encoding="utf-8")
    assert again.splitlines()[0] == f"dispatch-archive 1 {archive_id}"


def test_a_link_to_an_archive_is_written_through_and_stays_a_link(
    project: Path, tmp_path: Path
) -> None:
    real = tmp_path / "www" / "news"
    assert run(["archive", "--out", str(real)], project).returncode == 0
    (project / "public").symlink_to(real)
    beside = tmp_path / "www" / "other.txt"
    beside.write_bytes(PRECIOUS)
    (project / "issues" / "test" / "issue.yaml").write_text(
        (project / "issues" / "test" / "issue.yaml")
        .read_text(encoding="utf-8")
        .replace("Test issue", "Test issue, revised"),
        encoding="utf-8",
    )

    result = run(["archive", "--out", "public"], project)

    assert result.returncode == 0, result.stderr
    assert (project / "public").is_symlink() and (project / "public").resolve() == real
    assert "Test issue, revised" in (real / "index.html").read_text(encoding="utf-8")
    assert beside.read_bytes() == PRECIOUS
    assert sorted(p.name for p in real.parent.iterdir()) == ["news", "other.txt"]


def test_an_archive_from_before_the_marker_is_recognised(project: Path) -> None:
    assert run(["archive"], project).returncode == 0
    (project / "site" / MARKER_NAME).unlink()  # as an earlier dispatch left it

    result = run(["archive"], project)

    assert result.returncode == 0, result.stderr
    assert (project / "site" / MARKER_NAME).is_file()


def test_an_old_archive_holding_more_must_be_deleted_once(project: Path) -> None:
    assert run(["archive"], project).returncode == 0
    site = project / "site"
    (site / MARKER_NAME).unlink()
    (site / "CNAME").write_bytes(PRECIOUS)
    before = tree(site)

    result = run(["archive"], project)

    assert_one_error(result, "site: not a dispatch archive", "CNAME", "delete it once")
    assert tree(site) == before


def test_links_inside_an_archive_are_removed_not_followed(project: Path, tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious.txt").write_bytes(PRECIOUS)
    assert run(["archive"], project).returncode == 0
    (project / "site" / "shortcut").symlink_to(keep)  # added to a marked archive by hand
    (project / "site" / "test" / "file-link").symlink_to(keep / "precious.txt")

    result = run(["archive"], project)

    assert result.returncode == 0, result.stderr
    assert not (project / "site" / "shortcut").is_symlink()  # the archive replaced its folder
    assert (keep / "precious.txt").read_bytes() == PRECIOUS
    assert sorted(p.name for p in project.iterdir()) == ["dispatch.yaml", "issues", "site"]


def test_a_marker_that_is_a_link_does_not_count(project: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    assert run(["archive", "--out", str(real)], project).returncode == 0
    folder = tmp_path / "notes"  # an archive's files, the owner's file, and a link as marker
    shutil.copytree(real, folder)
    (folder / "precious.txt").write_bytes(PRECIOUS)
    (folder / MARKER_NAME).unlink()
    (folder / MARKER_NAME).symlink_to(real / MARKER_NAME)
    before = tree(folder)

    result = run(["archive", "--out", str(folder)], project)

    assert_one_error(result, "not a dispatch archive")
    assert tree(folder) == before


def test_a_folder_of_the_project_is_refused(project: Path) -> None:
    before = tree(project)

    result = run(["archive", "--out", "issues"], project)

    assert_one_error(result, "issues: not a dispatch archive")
    assert tree(project) == before
    assert_one_error(run(["archive", "--out", "."], project), "replace the project itself")
    assert tree(project) == before
