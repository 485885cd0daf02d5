"""`dispatch check`: what will go wrong in inboxes, as text, JSON or JUnit."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.options import chosen_issues, rendering_only, verbosity
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
    "--dns",
    is_flag=True,
    help="Also look up SPF, DKIM and DMARC of the From and envelope domains: do Gmail's and "
    "Yahoo's bulk-sender rules pass? (needs DNS; without an issue, checks the project here)",
)
@click.option(
    "--dns-server",
    metavar="HOST[:PORT]",
    envvar="DISPATCH_DNS_SERVER",
    show_envvar=True,
    help="With --dns, ask this DNS server instead of the system's resolver.",
)
@click.option(
    "--dns-timeout",
    type=click.FloatRange(0.1, 60),
    default=5.0,
    show_default=True,
    help="Seconds per DNS lookup with --dns.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
    help="The report as text, JSON or JUnit XML (for CI test reports).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@verbosity
@handle_errors
def check(
    issue_dirs: tuple[Path, ...],
    check_every: bool,
    strict: bool,
    links: bool,
    link_timeout: float,
    dns: bool,
    dns_server: str | None,
    dns_timeout: float,
    fmt: str,
    output: Path | None,
    verbose: bool,
    quiet: bool,
) -> int:
    """Find what will go wrong in inboxes: size, links, images, text part, accessibility,
    dark mode, client support.

    Exit status 1 when an error is found (or a warning, with --strict). With -v, notes
    too (client-support details that degrade gracefully); with -q, no figures.

    \b
    Examples:
      dispatch check issues/2026-q1
      dispatch check --all --strict --format junit --output check.xml
      dispatch check issues/2026-q1 --links
      dispatch check issues/2026-q1 --dns
    """
    from dispatch_mail.project.files import atomic_write
    from dispatch_mail.quality.checks import check_issue
    from dispatch_mail.quality.report import format_json, format_junit, format_text

    with rendering_only("check"):  # --dns reads dkim: its own loading, outside this
        chosen = issue_dirs or check_every or not dns
        folders = chosen_issues(issue_dirs, check_every) if chosen else []
        reports = [check_issue(f, links=links, link_timeout=link_timeout) for f in folders]
    if dns:
        from dispatch_mail.quality.dns_verdict import dns_reports, verdict_lines

        reports += dns_reports(folders, server=dns_server, timeout=dns_timeout)
    if fmt == "text":
        text = format_text(reports, verbose, quiet=quiet)
        text += verdict_lines(reports, verbose) if dns else ""
    else:
        text = format_json(reports) if fmt == "json" else format_junit(reports, strict)
    if output:
        atomic_write(output, text if text.endswith("\n") else text + "\n")
    else:
        click.echo(printable(text), color=color())
    return 1 if any(r.failed(strict) for r in reports) else 0
