"""`dispatch status`: a send's progress, failures and exclusions, from its journals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import echo

if TYPE_CHECKING:
    from dispatch_mail.delivery.status import JournalStatus


@click.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
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
    issue_dir: Path,
    list_name: str | None,
    journal_path: Path | None,
    failures_csv: Path | None,
    excluded: bool,
    fmt: str,
) -> int:
    """Show a send's progress and failures from its journal.

    One issue: its journals are those of its sends (one per list).

    \b
    Example:
      dispatch status issues/2026-q1
      dispatch status issues/2026-q1 --failures-csv failed.csv
    """
    from dispatch_mail.delivery.status import send_status, write_failures_csv

    statuses = send_status(
        issue_dir, list_name=list_name, journal_path=journal_path, excluded=excluded
    )
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
