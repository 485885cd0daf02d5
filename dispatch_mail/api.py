"""The library API behind the CLI: what a Python user calls, knowing nothing of click."""

from __future__ import annotations

from pathlib import Path

from .build import BuildResult, build_issue
from .manifest import find_project_root, issue_dirs, load_project

from .archive import ArchiveResult, build_archive
from .check import CheckReport, check_issue
from .export import export_issue

__all__ = ["ArchiveResult", "BuildResult", "CheckReport", "build_all", "build_archive", "build_issue", "check_issue", "export_issue"]


def build_all(project_dir: Path, out_dir: Path | None = None) -> tuple[list[BuildResult], list[tuple[Path, Exception]]]:
    """Build every issue of the project; a failing issue does not stop the others."""
    from .errors import DispatchError

    project = load_project(find_project_root(project_dir))
    built: list[BuildResult] = []
    failed: list[tuple[Path, Exception]] = []
    for folder in issue_dirs(project):
        try:
            built.append(build_issue(folder, out_dir / folder.name if out_dir else None))
        except DispatchError as exc:
            failed.append((folder, exc))
    return built, failed
