"""The library API behind the CLI: what a Python user calls, knowing nothing of click."""

from __future__ import annotations

from pathlib import Path

from .build import BuildResult, build_issue
from .manifest import find_project_root, issue_dirs, load_project

__all__ = ["BuildResult", "build_all", "build_archive", "build_issue", "check_issue", "export_issue"]


def build_archive(project_dir: Path, out_dir: Path | None = None):
    """The web archive (see archive.py); imported on use, so `dispatch build` does not pay for it."""
    from .archive import build_archive as run

    return run(project_dir, out_dir)


def check_issue(issue_dir: Path, **options):
    """Every check of `dispatch check` (see check.py)."""
    from .check import check_issue as run

    return run(issue_dir, **options)


def export_issue(issue_dir: Path, fmt: str, out: Path | None = None, **options):
    """`dispatch export` (see export.py)."""
    from .export import export_issue as run

    return run(issue_dir, fmt, out, **options)


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
