"""`dispatch build`: render issues, or every issue, or the CI previews."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.options import (
    chosen_issues,
    each_issue,
    issue_arguments,
    rendering_only,
    verbosity,
    worst_exit,
)
from dispatch_mail.cli.output import echo
from dispatch_mail.errors import UsageError
from dispatch_mail.project.paths import shown_path

if TYPE_CHECKING:
    from dispatch_mail.publish.build import BuildResult


@click.command()
@issue_arguments
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Output folder (default: build/<slug>/; with several issues, <DIR>/<slug>/).",
)
@click.option(
    "--previews",
    is_flag=True,
    help="With --all: also screenshots, check reports and an index.html gallery "
    "(the folder CI uploads).",
)
@click.option(
    "--chromium",
    type=click.Path(dir_okay=False),
    envvar="DISPATCH_CHROMIUM",
    help="Chromium executable for --previews.",
)
@verbosity
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The summary as text or JSON.",
)
@handle_errors
def build(
    issue_dirs: tuple[Path, ...],
    every_issue: bool,
    out_dir: Path | None,
    previews: bool,
    chromium: str | None,
    verbose: bool,
    quiet: bool,
    fmt: str,
) -> int:
    """Render issues into email.html, email.txt, email.mjml and email.eml.

    Several issues (or --all): each is built, every problem is reported, and the
    exit status is that of the worst.

    email.eml is a preview of the message, to open in a mail client: it is
    addressed to the sender, and its unsubscribe link (List-Unsubscribe) is the
    preferences page or the unsubscribe page without a personal token. What
    `dispatch send` sends is made per recipient: `dispatch send --dry-run DIR`
    writes those.

    \b
    Example:
      dispatch build issues/2026-q1
      dispatch build issues/2026-q1 --out /tmp/preview
      dispatch build issues/2025-q4 issues/2026-q1
      dispatch build --all
      dispatch build --all --previews --out previews/
    """
    with rendering_only("build"):
        return _build(issue_dirs, every_issue, out_dir, previews, chromium, verbose, quiet, fmt)


def _build(
    issue_dirs: tuple[Path, ...],
    every_issue: bool,
    out_dir: Path | None,
    previews: bool,
    chromium: str | None,
    verbose: bool,
    quiet: bool,
    fmt: str,
) -> int:
    if previews:
        if not every_issue:
            raise UsageError("--previews goes with --all")
        from dispatch_mail.browser.gallery import build_previews

        start = issue_dirs[0] if issue_dirs else Path.cwd()
        gallery = build_previews(start, out_dir, chromium=chromium, log=None if quiet else echo)
        echo(f"previews: {gallery.index}")
        return 1 if gallery.failed else 0
    from dispatch_mail.publish.build import build_issue

    folders = chosen_issues(issue_dirs, every_issue)
    if len(folders) == 1 and not every_issue:  # one issue: its error is the command's
        result = build_issue(folders[0], out_dir)
        if fmt == "json":
            click.echo(json.dumps(_summary(result), indent=2, ensure_ascii=False))
        _report(result, quiet or fmt == "json", verbose, summary=fmt == "text")
        return 0
    built, failed = each_issue(
        folders, lambda folder: build_issue(folder, out_dir / folder.name if out_dir else None)
    )
    if fmt == "json":
        click.echo(json.dumps([_summary(r) for r in built], indent=2, ensure_ascii=False))
    for result in built:
        _report(result, quiet or fmt == "json", verbose)
    if fmt == "text":
        echo(f"{len(built)} built, {len(failed)} failed")
    return worst_exit(failed)


def _summary(result: BuildResult) -> dict[str, object]:
    """A build's summary as data (for --format json)."""
    return {
        "issue": result.issue.slug,
        "out": shown_path(result.out_dir),
        "sections": len(result.issue.sections),
        "links": result.link_count,
        "files": result.files,
        "warnings": result.warnings,
        "timings_ms": {k: round(v * 1000, 2) for k, v in result.timings.items()},
    }


def _report(result: BuildResult, quiet: bool, verbose: bool, *, summary: bool = False) -> None:
    """What one build says; quiet: its warnings, and with ``summary`` its summary line
    (the command's, when it built one issue)."""
    from dispatch_mail.publish.build import describe

    if quiet:
        for warning in result.warnings:
            echo(f"warning: {warning}", err=True, fg="yellow")
        if summary:
            echo(describe(result).splitlines()[0])
        return
    echo(describe(result))
    if verbose:
        echo("  timings: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in result.timings.items()))
