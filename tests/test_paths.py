"""How a path is shown to the user: as they would type it from where they stand."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch_mail.project.paths import shown_path


@pytest.fixture
def deep_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "a" / "b" / "c" / "d"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    return folder


def test_a_path_outside_the_working_folder_is_shown_absolute(deep_cwd: Path) -> None:
    assert shown_path("/dev/null/x") == "/dev/null/x"
    assert shown_path(Path("/dev/null/x")) == "/dev/null/x"


def test_a_relative_path_that_climbs_out_is_shown_absolute(deep_cwd: Path) -> None:
    outside = deep_cwd.parent.parent / "other.yaml"
    assert shown_path("../../other.yaml") == str(outside)


def test_a_file_inside_the_working_folder_is_shown_relative(deep_cwd: Path) -> None:
    inside = deep_cwd / "issues" / "2026-q1" / "issue.yaml"
    assert shown_path(inside) == "issues/2026-q1/issue.yaml"
    assert shown_path(str(inside)) == "issues/2026-q1/issue.yaml"
    assert shown_path("issues/../issues/x") == "issues/x"


def test_the_working_folder_itself_is_a_dot(deep_cwd: Path) -> None:
    assert shown_path(deep_cwd) == "."


def test_a_sibling_whose_name_starts_like_the_working_folder_is_outside(deep_cwd: Path) -> None:
    sibling = deep_cwd.parent / (deep_cwd.name + "x") / "f"
    assert shown_path(sibling) == str(sibling)
