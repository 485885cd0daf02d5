"""`dispatch build`: render one issue, or every issue, or the CI previews."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from dispatch_mail.cli.errors import handle_errors, report_error
from dispatch_mail.cli.output import echo
from dispatch_mail.errors import UsageError
from dispatch_mail.project.paths import shown_path

if TYPE_CHECKING:
    from dispatch_mail.publish.build import BuildResult


@click.command()
@click.argument("issue_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Output folder (default: build/<slug>/; with --all, <DIR>/<slug>/).",
)
@click.option(
    "--all",
    "build_every",
    is_flag=True,
    help="Build every issue under the project's issues/ folder.",
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
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings and errors.")
@click.option("-v", "--verbose", is_flag=True, help="Also print the time each stage took.")
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
    issue_dir: Path | None,
    out_dir: Path | None,
    build_every: bool,
    previews: bool,
    chromium: str | None,
    quiet: bool,
    verbose: bool,
    fmt: str,
) -> int:
    """Render an issue into email.html, email.txt, email.mjml and email.eml.

    \b
    Example:
      dispatch build issues/2026-q1
      dispatch build issues/2026-q1 --out /tmp/preview
      dispatch build --all
      dispatch build --all --previews --out previews/
    """
    if previews:
        if not build_every:
            raise UsageError("--previews goes with --all")
        from dispatch_mail.browser.gallery import build_previews

        gallery = build_previews(
            issue_dir or Path.cwd(), out_dir, chromium=chromium, log=None if quiet else echo
        )
        echo(f"previews: {gallery.index}")
        return 1 if gallery.failed else 0
    if build_every:
        from dispatch_mail.publish.build import build_all

        built, failed = build_all(issue_dir or Path.cwd(), out_dir)
        if fmt == "json":
            import json

            click.echo(json.dumps([_summary(r) for r in built], indent=2, ensure_ascii=False))
        for result in built:
            _report(result, quiet or fmt == "json", verbose)
        for _folder, exc in failed:
            report_error(exc)
        if not quiet and fmt == "text":
            echo(f"{len(built)} built, {len(failed)} failed")
        return 1 if failed else 0
    if issue_dir is None:
        raise UsageError("name an issue folder (e.g. issues/2026-q1) or use --all")
    from dispatch_mail.publish.build import build_issue

    result = build_issue(issue_dir, out_dir)
    if fmt == "json":
        import json

        click.echo(json.dumps(_summary(result), indent=2, ensure_ascii=False))
    _report(result, quiet or fmt == "json", verbose)
    return 0


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


def _report(result: BuildResult, quiet: bool, verbose: bool) -> None:
    from dispatch_mail.publish.build import describe

    if quiet:
        for warning in result.warnings:
            echo(f"warning: {warning}", err=True, fg="yellow")
        return
    echo(describe(result))
    if verbose:
        echo("  timings: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in result.timings.items()))
