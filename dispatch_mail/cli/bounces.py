"""`dispatch bounces`: read the return mailbox, classify each message, record it once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import echo, plural


@click.command()
@click.option("--mbox", type=click.Path(path_type=Path), help="Read an mbox file (never changed).")
@click.option("--maildir", type=click.Path(path_type=Path), help="Read a maildir (never changed).")
@click.option(
    "--imap",
    metavar="URL",
    help="Read an IMAP folder: imaps://user@host[:port]/FOLDER (or imap:// with STARTTLS). "
    "The password comes from DISPATCH_IMAP_PASSWORD; the certificate is verified against the "
    "system's CAs or the file SSL_CERT_FILE names.",
)
@click.option("--dry-run", is_flag=True, help="Show each classification; record and move nothing.")
@click.option(
    "--move-to",
    metavar="FOLDER",
    help="IMAP: move handled messages (recorded, already processed, ignored) to this folder; "
    "unknown and unmatched ones stay.",
)
@click.option(
    "--secret-file",
    type=click.Path(path_type=Path),
    help="The unsubscribe secret (else DISPATCH_UNSUBSCRIBE_SECRET): it reads VERP addresses "
    "and tokens.",
)
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="A shared PostgreSQL store (else DISPATCH_DATABASE_URL, else the project's SQLite file).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The outcome as text or JSON (one entry per message read).",
)
@handle_errors
def bounces(
    mbox: Path | None,
    maildir: Path | None,
    imap: str | None,
    dry_run: bool,
    move_to: str | None,
    secret_file: Path | None,
    database_url: str | None,
    fmt: str,
) -> int:
    """Read bounces, complaints and unsubscribe requests from the return mailbox.

    Hard bounces and complaints suppress the address on every list at once; soft
    bounces count (bounces.soft_limit in bounces.soft_window_days); auto-replies
    and delay notices are ignored. A bounce for an address dispatch did not send
    to is reported, never recorded. Messages it does not understand stay where
    they are. Running it again on the same mail changes nothing.

    \b
    Examples:
      dispatch bounces --mbox ~/Mail/bounces --dry-run
      DISPATCH_IMAP_PASSWORD=… dispatch bounces \
        --imap imaps://bounces@mail.example.org/INBOX --move-to Processed
    """
    from dispatch_mail.bounces.process import process_bounces
    from dispatch_mail.bounces.sources import PASSWORD_ENV, MailboxSpec
    from dispatch_mail.project.loader import find_project_root, load_project

    project = load_project(find_project_root(Path.cwd()))
    spec = MailboxSpec(mbox, maildir, imap, os.environ.get(PASSWORD_ENV))
    run = process_bounces(
        project,
        spec,
        dry_run=dry_run,
        move_to=move_to,
        secret_file=secret_file,
        database_url=database_url,
    )
    if fmt == "json":
        click.echo(json.dumps(run.as_dict(), indent=2))
        return 0
    for result in run.messages:
        for finding in result.findings:
            echo(f"{result.key}: {finding.line}")
    for warning in run.warnings:
        echo(f"warning: {warning}", err=True)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(run.counts.items())) or "nothing"
    echo(f"{run.mailbox}: {plural(len(run.messages), 'message')}: {counts}")
    if dry_run:
        echo("dry run: nothing recorded, nothing moved")
    elif move_to:
        echo(f"{plural(run.moved, 'message')} moved to {move_to}")
    return 0
