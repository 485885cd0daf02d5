"""`dispatch status`: a send's progress, failures and exclusions, from its journals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.options import chosen_issues, issue_arguments
from dispatch_mail.cli.output import echo
from dispatch_mail.errors import NothingSent, UsageError

if TYPE_CHECKING:
    from dispatch_mail.delivery.status import JournalStatus


@click.command()
@issue_arguments
@click.option("--list", "list_name", metavar="NAME", help="Only the journal of this list.")
@click.option(
    "--journal", "journal_path", type=click.Path(path_type=Path), help="A journal file to read."
)
@click.option(
    "--failures-csv",
    type=click.Path(path_type=Path),
    help="Write the failed recipients (email, code, reply) to this CSV.",
)
@click.option("--excluded", is_flag=True, help="List the rows excluded from the list and why.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The report as text or JSON (every deferred and failed recipient).",
)
@handle_errors
def status(
    issue_dirs: tuple[Path, ...],
    every_issue: bool,
    list_name: str | None,
    journal_path: Path | None,
    failures_csv: Path | None,
    excluded: bool,
    fmt: str,
) -> int:
    """Show a send's progress and failures from its journal.

    An issue's journals are those of its sends (one per list). With several issues
    or --all, an issue not sent yet is said to be so.

    \b
    Example:
      dispatch status issues/2026-q1
      dispatch status issues/2026-q1 --failures-csv failed.csv
      dispatch status --all
    """
    from dispatch_mail.delivery.status import send_status, write_failures_csv

    folders = chosen_issues(issue_dirs, every_issue)
    if journal_path is not None and len(folders) > 1:
        raise UsageError("--journal names one send's journal: give one issue with it")
    statuses: list[JournalStatus] = []
    for folder in folders:
        try:
            statuses += send_status(
                folder, list_name=list_name, journal_path=journal_path, excluded=excluded
            )
        except NothingSent as exc:
            if len(folders) == 1:
                raise
            if fmt == "text":
                echo(f"{exc.issue}: nothing sent yet")
    if failures_csv:  # every journal's failures in one file
        write_failures_csv(failures_csv, statuses)
    if fmt == "json":
        click.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
        return 0
    for entry in statuses:
        for line in describe_status(entry):
            echo(line)
    if failures_csv:
        echo(f"failures written to {failures_csv}")
    return 0


def describe_status(entry: JournalStatus) -> list[str]:
    from dispatch_mail.delivery.session import due_time

    c = entry.counts
    lines = [
        f"{entry.journal}: {c['sent']:,}/{entry.total:,} sent, {c['pending']:,} pending, "
        f"{c.get('deferred', 0):,} deferred, {c['failed']:,} failed, {c['held']:,} held, "
        f"{c['sending']:,} in flight"
    ]
    if entry.sending_now:
        lines.append(f"  sending now:  {entry.sending_now}")
    if entry.uncertain:
        lines.append(
            f"  {entry.uncertain} interrupted in flight at some point (possible duplicates)"
        )
    for d in entry.deferred[:50]:
        lines.append(
            f"  deferred: {d.email}: due {due_time(d.due)} (deferred {d.deferrals}×, "
            f"since {due_time(d.since)}): {d.last_reply or ''}"
        )
    if len(entry.deferred) > 50:
        lines.append(f"  … and {len(entry.deferred) - 50} more deferred (--format json for all)")
    if entry.sent_after_deferral:
        lines.append(f"  reached after a deferral: {entry.sent_after_deferral:,}")
    lines += [f"  failed: {f.email}: {f.reply}" for f in entry.failures[:50]]
    if len(entry.failures) > 50:
        lines.append(f"  … and {len(entry.failures) - 50} more (--failures-csv FILE for all)")
    lines += [f"  excluded: {line}" for line in entry.excluded]
    return lines
