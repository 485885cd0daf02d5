"""Finding and loading the newsletter's files: ``dispatch.yaml`` and ``issues/<slug>/issue.yaml``.

Both are validated in full before anything is rendered; problems from both
files are reported together in one :class:`ContentError`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dispatch_mail.errors import ContentError, Problem, UsageError
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.paths import MANIFEST_FILE, shown_path
from dispatch_mail.project.schema import load_file
from dispatch_mail.project.settings import PROJECT_FILE, Project

__all__ = ["MANIFEST_FILE", "find_project_root", "issue_dirs", "load", "load_project", "shown_path"]


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds ``dispatch.yaml``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise UsageError(
        f"{shown_path(start)}: no {PROJECT_FILE} here or in any parent folder (run 'dispatch init')"
    )


def _load_project(root: Path) -> tuple[Project | None, list[Problem]]:
    path = root / PROJECT_FILE
    project, problems = load_file(path, Project, shown_path(path))
    if project is not None:
        project = dataclasses.replace(project, root=root)
    return project, problems


def load_project(root: Path) -> Project:
    """Load and validate ``dispatch.yaml`` from the project folder ``root``."""
    project, problems = _load_project(root)
    if problems or project is None:
        raise ContentError(problems)
    return project


def resolve_issue_dir(target: Path) -> Path:
    """Accept an issue folder or its ``issue.yaml``; complain clearly about anything else."""
    if target.is_file() and target.name == MANIFEST_FILE:
        target = target.parent
    if not target.is_dir():
        raise UsageError(f"{shown_path(target)}: no such issue folder")
    if not (target / MANIFEST_FILE).is_file():
        raise UsageError(f"{shown_path(target)}: no {MANIFEST_FILE} in this folder")
    return target.resolve()


def load(issue_dir: Path) -> tuple[Project, Issue]:
    """Load the project and one issue; every problem of both files in one error."""
    issue_dir = resolve_issue_dir(issue_dir)
    root = find_project_root(issue_dir)
    project, problems = _load_project(root)
    path = issue_dir / MANIFEST_FILE
    issue, issue_problems = load_file(path, Issue, shown_path(path))
    problems += issue_problems
    if problems or project is None or issue is None:
        raise ContentError(problems)
    issue = dataclasses.replace(issue, slug=issue_dir.name, path=str(path))
    return project, issue


def issue_dirs(project: Project) -> list[Path]:
    """Every issue folder of the project, oldest slug first."""
    folder = project.root / project.issues
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / MANIFEST_FILE).is_file())
