"""`dispatch archive` and `dispatch export`: the issue for the web and for other tools."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.options import (
    chosen_issues,
    each_issue,
    issue_arguments,
    rendering_only,
    worst_exit,
)
from dispatch_mail.cli.output import echo, plural
from dispatch_mail.errors import UsageError


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Folder of the site (default site/ beside dispatch.yaml).",
)
@click.argument("project_dir", required=False, type=click.Path(path_type=Path))
@handle_errors
def archive(out_dir: Path | None, project_dir: Path | None) -> int:
    """Build the web archive: a page per issue, an index newest first, and an Atom feed.

    \b
    Example:
      dispatch archive --out site/
    """
    from dispatch_mail.publish.archive import build_archive

    with rendering_only("archive"):
        result = build_archive(project_dir or Path.cwd(), out_dir)
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True, fg="yellow")
    echo(f"archive: {plural(len(result.pages), 'issue')}, index and feed in {result.out_dir}")
    return 0


@click.command()
@issue_arguments
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["eml", "mbox", "html", "zip"]),
    required=True,
    help="What to export.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Output file (default build/<slug>/export.<format>); one issue only.",
)
@click.option(
    "--unsubscribe-tag",
    help="Your email service's unsubscribe merge tag for the HTML (e.g. '*|UNSUB|*').",
)
@handle_errors
def export(
    issue_dirs: tuple[Path, ...],
    every_issue: bool,
    fmt: str,
    out: Path | None,
    unsubscribe_tag: str | None,
) -> int:
    """Export built issues: one .eml, an mbox of test messages, one HTML file,
    or a zip for an ESP.

    Several issues (or --all): each is exported to its default file, every
    problem is reported, and the exit status is that of the worst.

    \b
    Example:
      dispatch export issues/2026-q1 --format zip --unsubscribe-tag '*|UNSUB|*'
      dispatch export --all --format html
    """
    from dispatch_mail.publish.export import export_issue

    def write(folder: Path) -> None:
        echo(f"wrote {export_issue(folder, fmt, out, unsubscribe_tag=unsubscribe_tag)}")

    with rendering_only("export"):
        folders = chosen_issues(issue_dirs, every_issue)
        if out is not None and (len(folders) > 1 or every_issue):
            raise UsageError("--out names one file: give one issue, or leave --out out")
        if len(folders) == 1 and not every_issue:
            write(folders[0])
            return 0
        _done, failed = each_issue(folders, write)
    return worst_exit(failed)
