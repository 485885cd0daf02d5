"""`dispatch check`: what will go wrong in inboxes, as text, JSON or JUnit."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import color, printable


@click.command()
@click.argument("issue_dirs", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--all",
    "check_every",
    is_flag=True,
    help="Check every issue under the project's issues/ folder.",
)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option(
    "--links", is_flag=True, help="Also check that every link answers (needs the network)."
)
@click.option(
    "--link-timeout",
    type=click.FloatRange(0.1, 120),
    default=10.0,
    show_default=True,
    help="Seconds per link with --links.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show notes too (client-support details that degrade gracefully).",
)
@handle_errors
def check(
    issue_dirs: tuple[Path, ...],
    check_every: bool,
    strict: bool,
    links: bool,
    link_timeout: float,
    fmt: str,
    output: Path | None,
    verbose: bool,
) -> int:
    """Find what will go wrong in inboxes: size, links, images, text part, accessibility,
    dark mode, client support.

    Exit status 1 when an error is found (or a warning, with --strict).

    \b
    Examples:
      dispatch check issues/2026-q1
      dispatch check --all --strict --format junit --output check.xml
      dispatch check issues/2026-q1 --links
    """
    from dispatch_mail.errors import UsageError
    from dispatch_mail.project.files import atomic_write
    from dispatch_mail.project.loader import (
        find_project_root,
        load_project,
    )
    from dispatch_mail.project.loader import (
        issue_dirs as project_issue_dirs,
    )
    from dispatch_mail.quality.checks import check_issue
    from dispatch_mail.quality.report import format_json, format_junit, format_text

    folders = list(issue_dirs)
    if check_every:
        folders += project_issue_dirs(load_project(find_project_root(Path.cwd())))
    if not folders:
        raise UsageError("name an issue folder (e.g. issues/2026-q1) or use --all")
    reports = [check_issue(folder, links=links, link_timeout=link_timeout) for folder in folders]
    if fmt == "text":
        text = format_text(reports, verbose)
    else:
        text = format_json(reports) if fmt == "json" else format_junit(reports, strict)
    if output:
        atomic_write(output, text if text.endswith("\n") else text + "\n")
    else:
        click.echo(printable(text), color=color())
    return 1 if any(r.failed(strict) for r in reports) else 0
