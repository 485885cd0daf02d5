"""`dispatch send`: test copies, dry runs, and the real send to a list.

The send's orchestration (plan, journal, engine, outcome) is the library's
``delivery.session.ListSend``; this module parses options, words the plan, asks,
shows progress, and prints the outcome.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import echo, plural
from dispatch_mail.cli.sendview import describe_plan, progress_bar, relay_notice
from dispatch_mail.errors import UsageError

if TYPE_CHECKING:
    from dispatch_mail.delivery.campaign import Prepared
    from dispatch_mail.delivery.engine import SendOptions
    from dispatch_mail.delivery.session import SendOutcome
    from dispatch_mail.delivery.smtp import SmtpSettings


@dataclass(frozen=True)
class SendArgs:
    """The options of `dispatch send`, as one typed value."""

    to_reviewers: bool
    to: tuple[str, ...]
    as_recipient: str | None
    list_name: str | None
    yes: bool
    dry_run_to: Path | None
    profile: str | None
    smtp_host: str | None
    smtp_port: int | None
    tls: str | None
    insecure: bool
    cafile: str | None
    concurrency: int | None
    rate: float | None
    max_per_hour: int | None
    max_per_day: int | None
    max_attempts: int
    retry_base: float
    throttle_pause: float
    journal_path: Path | None
    uncertain: str
    force: bool
    secret_file: Path | None
    retry_deferred: bool
    database: str | None
    timeout: float | None
    connect_timeout: float | None
    quiet: bool

    @property
    def testing(self) -> bool:
        return self.to_reviewers or bool(self.to)


@click.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option(
    "--test",
    "to_reviewers",
    is_flag=True,
    help="Send test copies to the reviewers in dispatch.yaml.",
)
@click.option(
    "--to", "to", multiple=True, metavar="ADDRESS", help="Send a test copy to ADDRESS (repeatable)."
)
@click.option(
    "--as-recipient",
    metavar="EMAIL",
    help="With --test/--to: the copy this member of a list in dispatch.yaml would get "
    "(their name and fields; links stay the test recipient's).",
)
@click.option(
    "--list",
    "list_name",
    metavar="NAME_OR_CSV",
    help="The real send: a list of dispatch.yaml, or a CSV file.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option(
    "--dry-run",
    "dry_run_to",
    type=click.Path(path_type=Path),
    metavar="DIR_OR_MBOX",
    help="Write every message to DIR (.eml files) or FILE.mbox instead of sending.",
)
@click.option(
    "--smtp",
    "profile",
    metavar="PROFILE",
    help="SMTP profile of dispatch.yaml (default: 'default').",
)
@click.option(
    "--smtp-host",
    help="SMTP relay host; overrides the profile's host only (its port, TLS and "
    "credentials still apply).",
)
@click.option(
    "--smtp-port",
    type=click.IntRange(1, 65535),
    help="SMTP relay port (default: the profile's, else by --tls: 587, 465 or 25).",
)
@click.option(
    "--tls",
    type=click.Choice(["implicit", "starttls", "none"]),
    help="Transport security (default: the profile's tls, else starttls).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow plaintext to a non-loopback host and skip certificate checks.",
)
@click.option(
    "--cafile",
    type=click.Path(exists=True, dir_okay=False),
    help="Trust this CA bundle for the relay's certificate (default: the profile's cafile).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    help="SMTP connections at once (default: the profile's, else 4).",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.001, 100000),
    help="Messages per second at most (default: the profile's rate).",
)
@click.option(
    "--max-per-hour",
    type=click.IntRange(1, None),
    help="Stop once this many were sent in the last hour.",
)
@click.option(
    "--max-per-day",
    type=click.IntRange(1, None),
    help="Stop once this many were sent in the last 24 hours.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="Tries per recipient for transient failures.",
)
@click.option(
    "--retry-base",
    type=click.FloatRange(0, None),
    default=5.0,
    show_default=True,
    help="Seconds before the first retry (doubles each time, with jitter).",
)
@click.option(
    "--throttle-pause",
    type=click.FloatRange(0, None),
    default=30.0,
    show_default=True,
    help="Seconds the whole send pauses when the relay throttles.",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(path_type=Path),
    help="The send journal (default build/<slug>/send-<list>.journal).",
)
@click.option(
    "--uncertain",
    type=click.Choice(["resend", "hold"]),
    default="resend",
    show_default=True,
    help="Recipients a crash left in flight: send again, or hold for review.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Resume even though the rendered issue changed since the send started.",
)
@click.option(
    "--secret-file",
    type=click.Path(path_type=Path),
    help="File holding the unsubscribe-token secret (else DISPATCH_UNSUBSCRIBE_SECRET).",
)
@click.option(
    "--retry-deferred",
    is_flag=True,
    help="Try the deferred recipients (refused for now with a 4xx) at once, due or not.",
)
@click.option(
    "--database",
    metavar="URL",
    help="The suppression store (else DISPATCH_DATABASE_URL, else the project's SQLite file).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    help="Seconds each SMTP command may take (default: the profile's timeout, else 30).",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(1, 600),
    help="Seconds to wait for the relay to answer a new connection "
    "(default: the profile's connect_timeout, else 15).",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Print only warnings, errors and the summary line."
)
@handle_errors
def send(issue_dir: Path, **options: Any) -> int:
    """Send test copies, or the real send to a list: personalized, throttled, resumable.

    One issue: a send is one issue to one list.

    \b
    Examples:
      dispatch send issues/2026-q1 --test                      # the reviewers in dispatch.yaml
      dispatch send issues/2026-q1 --to me@example.org
      dispatch send issues/2026-q1 --list subscribers --dry-run out.mbox
      dispatch send issues/2026-q1 --list subscribers          # shows the plan, asks, sends
      dispatch send issues/2026-q1 --list subscribers --yes    # resumes where it stopped

    The relay is the SMTP profile (--smtp, else 'default'); --smtp-host and the
    other relay options override its fields one by one. Credentials come from the
    variables the profile names (DISPATCH_SMTP_USER and DISPATCH_SMTP_PASSWORD
    unless it names others) or its password_file, the unsubscribe-token secret
    from DISPATCH_UNSUBSCRIBE_SECRET (or --secret-file).
    """
    from dispatch_mail.delivery import campaign
    from dispatch_mail.delivery.engine import SendOptions

    args = SendArgs(**options)
    if args.as_recipient and not args.testing:
        raise UsageError("--as-recipient previews a member's copy in a test: add --test or --to")
    if args.testing and args.list_name:
        raise UsageError("--test/--to and --list are separate sends: choose one")
    if not args.testing and not args.list_name:
        raise UsageError("say who gets it: --test (reviewers), --to ADDRESS, or --list NAME_OR_CSV")
    prepared = campaign.prepare(
        issue_dir,
        secret_file=args.secret_file,
        test=args.testing,
        secret_required=not args.testing and args.dry_run_to is None,
        profile=args.profile,
    )
    if prepared.secret_is_ephemeral:
        echo(
            "note: no DISPATCH_UNSUBSCRIBE_SECRET; unsubscribe links in these copies use a "
            "throwaway secret",
            err=True,
        )
    for warning in prepared.messages.dkim.warnings if prepared.messages.dkim else ():
        echo(f"warning: {warning}", err=True, fg="yellow")
    if args.dry_run_to is not None:
        return _dry_run(prepared, args, args.dry_run_to)
    settings, defaults = campaign.smtp_settings(
        prepared.project,
        args.profile,
        args.smtp_host,
        args.smtp_port,
        args.tls,
        args.insecure,
        args.cafile,
        args.timeout,
        args.connect_timeout,
    )
    options_ = SendOptions(
        concurrency=args.concurrency or defaults.concurrency or 4,
        rate=args.rate if args.rate is not None else defaults.rate,
        max_per_hour=args.max_per_hour,
        max_per_day=args.max_per_day,
        max_attempts=args.max_attempts,
        retry_base=args.retry_base,
        throttle_pause=args.throttle_pause,
        defer_retry=prepared.project.deferrals.retry_minutes * 60,
        defer_lifetime=prepared.project.deferrals.lifetime_hours * 3600,
        on_retry=relay_notice(after_bar=not (args.testing or args.quiet) and sys.stderr.isatty()),
    )
    if args.testing:
        return _test_send(prepared, args, settings, options_)
    return _list_send(prepared, args, settings, options_)


def _test_recipients(prepared: Prepared, args: SendArgs) -> list[Any]:
    from dispatch_mail.delivery import campaign

    return campaign.test_recipients(
        prepared.project, list(args.to), args.to_reviewers, args.as_recipient
    )


def _dry_run(prepared: Prepared, args: SendArgs, out: Path) -> int:
    from dispatch_mail.delivery import campaign
    from dispatch_mail.suppression import open_store

    if args.testing:
        count, excluded = campaign.dry_run(prepared, _test_recipients(prepared, args), None, out)
    else:
        with open_store(prepared.project, url=args.database) as store:
            count, excluded = campaign.dry_run(prepared, None, args.list_name, out, store)
    for exclusion in excluded:
        echo(f"excluded: {exclusion}", err=True)
    echo(f"dry run: {plural(count, 'message')} written to {out}; nothing was sent")
    return 0


def _test_send(
    prepared: Prepared, args: SendArgs, settings: SmtpSettings, options: SendOptions
) -> int:
    import asyncio

    from dispatch_mail.delivery import campaign

    recipients = _test_recipients(prepared, args)
    summary, failures = asyncio.run(campaign.send_test(prepared, recipients, settings, options))
    for address, reply in failures:
        echo(f"not delivered: {address}: {reply}", err=True, fg="red")
    echo(
        f"test copies: {summary.sent} sent to {', '.join(r.email for r in recipients)} "
        + (f"as {args.as_recipient}'s copy " if args.as_recipient else "")
        + f"via {settings.describe()}"
    )
    return 1 if failures else 0


def _list_send(
    prepared: Prepared, args: SendArgs, settings: SmtpSettings, options: SendOptions
) -> int:
    from dispatch_mail.delivery.session import ListSend

    assert args.list_name is not None
    with ListSend(
        prepared,
        args.list_name,
        settings,
        options,
        journal_path=args.journal_path,
        force=args.force,
        uncertain=args.uncertain,
        retry_deferred=args.retry_deferred,
        database_url=args.database,
        resume_command=resume_command(sys.argv[1:]),
    ) as list_send:
        plan = list_send.plan
        echo(describe_plan(plan))
        if plan.to_send == 0:
            return _print_outcome(list_send.nothing_to_send(), progress_shown=False)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("not a terminal: add --yes to send without asking")
            if not click.confirm(f"Send {plural(plan.to_send, 'message')} now?", default=False):
                echo("nothing sent")
                return 0
        progress = None if args.quiet or not sys.stderr.isatty() else progress_bar(plan.to_send)
        outcome = list_send.run(progress)
    return _print_outcome(outcome, progress_shown=progress is not None)


def _print_outcome(outcome: SendOutcome, *, progress_shown: bool) -> int:
    # stopped at once by a second Ctrl-C: the bar's line is ended by the note itself
    at_once = outcome.summary is None and outcome.error is None and outcome.exit_code == 130
    if progress_shown and not at_once:
        click.echo("", err=True)
    if outcome.error is not None:
        echo(f"error: {outcome.error}", err=True, fg="red")
    if outcome.report:
        echo(outcome.report)
    for note in outcome.notes:
        echo(("\n" if at_once else "") + note, err=True)
    if outcome.resume_command:
        echo(f"resume with: {outcome.resume_command}", err=True)
        if outcome.counts.get("deferred"):
            echo("(add --retry-deferred to try the deferred ones at once)", err=True)
    return outcome.exit_code


def resume_command(argv: list[str]) -> str:
    """The command to copy to go on: this one, with --yes, so it does not ask again."""
    args = ["dispatch", *argv]
    if "--yes" not in args:
        args.append("--yes")
    return " ".join(shlex.quote(a) for a in args)
