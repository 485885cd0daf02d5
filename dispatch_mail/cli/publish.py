"""`dispatch archive` and `dispatch export`: the issue for the web and for other tools."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import echo


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

    result = build_archive(project_dir or Path.cwd(), out_dir)
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True, fg="yellow")
    echo(f"archive: {len(result.pages)} issues, index and feed in {result.out_dir}")
    return 0


@click.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
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
    help="Output file (default build/<slug>/export.<format>).",
)
@click.option(
    "--unsubscribe-tag",
    help="Your email service's unsubscribe merge tag for the HTML (e.g. '*|UNSUB|*').",
)
@handle_errors
def export(issue_dir: Path, fmt: str, out: Path | None, unsubscribe_tag: str | None) -> int:
    """Export the built issue: one .eml, an mbox of test messages, one HTML file,
    or a zip for an ESP.

    \b
    Example:
      dispatch export issues/2026-q1 --format zip --unsubscribe-tag '*|UNSUB|*'
    """
    from dispatch_mail.publish.export import export_issue

    echo(f"wrote {export_issue(issue_dir, fmt, out, unsubscribe_tag=unsubscribe_tag)}")
    return 0
