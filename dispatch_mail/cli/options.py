"""What the commands share: which issues (``ISSUE_DIR...`` or ``--all``), how much to say
(``-v``/``-q``), one issue's failure not stopping the others, and the settings they don't read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import click

from dispatch_mail.cli.errors import report_error
from dispatch_mail.cli.output import echo
from dispatch_mail.errors import DispatchError, UsageError

F = TypeVar("F", bound=Callable[..., object])
R = TypeVar("R")

def issue_arguments(func: F) -> F:
    """``ISSUE_DIR...`` and ``--all``: the same two ways to name issues on every command."""
    func = click.option(
        "--all",
        "every_issue",
        is_flag=True,
        help="Every issue folder of the project (the one around the current folder, "
        "or around a folder given).",
    )(func)
    return click.argument("issue_dirs", nargs=-1, type=click.Path(path_type=Path))(func)


def verbosity(func: F) -> F:
    func = click.option(
        "-q", "--quiet", is_flag=True, help="Print only warnings, errors and the summary line."
    )(func)
    return click.option(
        "-v", "--verbose", is_flag=True, help="Print more detail (notes, stage timings)."
    )(func)


def chosen_issues(issue_dirs: tuple[Path, ...], every_issue: bool) -> list[Path]:
    """The issue folders named, or with ``--all`` every issue of the project, each once.

    With ``--all``, a folder given that is not an issue names the project to look in
    (``dispatch build --all path/to/newsletter``).
    """
    from dispatch_mail.project.loader import find_project_root, load_project
    from dispatch_mail.project.loader import issue_dirs as project_issues
    from dispatch_mail.project.paths import MANIFEST_FILE

    folders = list(issue_dirs)
    if every_issue:
        starts = [f for f in folders if not (f / MANIFEST_FILE).is_file()] or [Path.cwd()]
        folders = [f for f in folders if (f / MANIFEST_FILE).is_file()]
        for start in starts:
            folders += project_issues(load_project(find_project_root(start)))
    if not folders:
        raise UsageError("name an issue folder (e.g. issues/2026-q1) or use --all")
    unique: dict[Path, Path] = {}
    for folder in folders:
        unique.setdefault(folder.resolve(), folder)
    return list(unique.values())


def each_issue(
    folders: list[Path], work: Callable[[Path], R]
) -> tuple[list[R], list[tuple[Path, DispatchError]]]:
    """Run ``work`` on every folder; a failing issue is reported and the others go on."""
    done: list[R] = []
    failed: list[tuple[Path, DispatchError]] = []
    for folder in folders:
        try:
            done.append(work(folder))
        except DispatchError as exc:
            report_error(exc)
            failed.append((folder, exc))
    return done, failed


def worst_exit(failed: list[tuple[Path, DispatchError]]) -> int:
    """The exit status of several issues: that of the worst failure, 0 when none failed."""
    return max((exc.exit_code for _folder, exc in failed), default=0)


def warn(line: str) -> None:
    echo(f"warning: {line}", err=True, fg="yellow")


@contextmanager
def rendering_only(command: str) -> Iterator[None]:
    """``command`` renders and never reads the sending settings: their problems only warn."""
    from dispatch_mail.project.sections import not_using

    with not_using(command, warn):
        yield
