"""Finding and loading the newsletter's files: ``dispatch.yaml`` and ``issues/<slug>/issue.yaml``.

Both are validated in full before anything is rendered; problems from both
files are reported together in one :class:`ContentError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import yaml

from dispatch_mail.errors import ContentError, Problem, UsageError
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.paths import MANIFEST_FILE, shown_path
from dispatch_mail.project.relay_checks import relay_problems
from dispatch_mail.project.schema import load_file
from dispatch_mail.project.sections import set_aside
from dispatch_mail.project.settings import PROJECT_FILE, Project
from dispatch_mail.project.yaml_nodes import compose_file

__all__ = [
    "MANIFEST_FILE",
    "find_project_root",
    "issue_dirs",
    "load",
    "load_project",
    "locate",
    "shown_path",
]


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
    problems, unused = set_aside(problems)
    if unused:  # the running command doesn't read these sections: go on without them
        project, problems = load_file(path, Project, shown_path(path), leave_out=unused)
    if project is not None:
        project = dataclasses.replace(project, root=root)
        found = list(relay_problems(project))
        if found:  # rules beyond the types: every one reported where it is written
            node, _ = compose_file(path, shown_path(path))
            located = []
            for keys, value_at_fault, message in found:
                line, column = _position(node, keys, value_at_fault)
                located.append(Problem(shown_path(path), line, column, _dotted(keys), message))
            located, _ = set_aside(located)
            if located:
                problems += located
                project = None
    return project, problems


def locate(project: Project, keys: Sequence[str], message: str, *, value: bool = True) -> Problem:
    """``message`` as a Problem placed at ``keys`` (``("smtp", "default", "return_path")``).

    For checks made after loading (a return path, a credentials file): the file is
    read again to find the line, which costs a parse only when something is wrong.
    """
    path = project.root / PROJECT_FILE
    node, _ = compose_file(path, shown_path(path))
    line, column = _position(node, keys, value)
    return Problem(shown_path(path), line, column, _dotted(keys), message)


def _dotted(keys: Sequence[str]) -> str:
    return ".".join(keys)  # as the schema's join_key writes a key path


def _position(node: yaml.Node | None, keys: Sequence[str], value: bool) -> tuple[int, int]:
    """1-based line and column of the key (or its value) at ``keys``; (0, 0) if not written."""
    key_node: yaml.Node | None = None
    for name in keys:
        if not isinstance(node, yaml.MappingNode):
            return 0, 0
        match = next(
            ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == name),
            None,
        )
        if match is None:
            return 0, 0
        key_node, node = match
    target = node if value else key_node
    if target is None:
        return 0, 0
    return target.start_mark.line + 1, target.start_mark.column + 1


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
