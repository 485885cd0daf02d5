"""The command line: options only. Each command calls the library and returns an exit code.

Exit codes: 0 ok, 1 content or delivery errors, 2 usage errors, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from functools import wraps
from pathlib import Path

import click

from dispatch_mail.errors import ContentError, DispatchError
from dispatch_mail.version import __version__


def _color() -> bool | None:
    return False if os.environ.get("NO_COLOR") else None  # None: click decides by isatty


def echo(message: str = "", *, err: bool = False, fg: str | None = None) -> None:
    click.secho(message, err=err, fg=fg, color=_color())


def handle_errors(func):
    """The one place where errors become messages and exit codes; never a traceback."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            code = func(*args, **kwargs)
        except ContentError as exc:
            for problem in exc.problems:
                echo(f"error: {problem}", err=True, fg="red")
            echo(
                f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''} found; nothing was written",
                err=True,
            )
            sys.exit(exc.exit_code)
        except DispatchError as exc:
            echo(f"error: {exc}", err=True, fg="red")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug of ours: say so in one line
            if os.environ.get("DISPATCH_DEBUG"):
                raise
            echo(
                f"internal error: {type(exc).__name__}: {exc} (set DISPATCH_DEBUG=1 for a traceback)",
                err=True,
                fg="red",
            )
            sys.exit(1)
        sys.exit(code or 0)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dispatch")
def main() -> None:
    """Assemble, check and send an email newsletter from files kept in git.

    \b
    dispatch build issues/2026-q1        render one issue into build/2026-q1/
    dispatch build --all                 render every issue
    """


@main.command()
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
    help="With --all: also screenshots, check reports and an index.html gallery (the folder CI uploads).",
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
    from dispatch_mail.errors import UsageError

    if previews:
        if not build_every:
            raise UsageError("--previews goes with --all")
        from dispatch_mail.publish.gallery import build_previews

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
            problems = exc.problems if isinstance(exc, ContentError) else (exc,)
            for problem in problems:
                echo(f"error: {problem}", err=True, fg="red")
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


@main.command()
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
    """Find what will go wrong in inboxes: size, links, images, text part, accessibility, dark mode, client support.

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
    from dispatch_mail.quality.checks import check_issue, format_json, format_junit, format_text

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
        click.echo(text, color=_color())
    return 1 if any(r.failed(strict) for r in reports) else 0


@main.command()
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
@click.option("--smtp-host", help="SMTP relay host (overrides the profile).")
@click.option("--smtp-port", type=click.IntRange(1, 65535), help="SMTP relay port.")
@click.option(
    "--tls",
    type=click.Choice(["implicit", "starttls", "none"]),
    help="Transport security (default starttls).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow plaintext to a non-loopback host and skip certificate checks.",
)
@click.option(
    "--cafile",
    type=click.Path(exists=True, dir_okay=False),
    help="Trust this CA bundle for the relay's certificate.",
)
@click.option("--concurrency", type=click.IntRange(1, 256), help="SMTP connections at once.")
@click.option("--rate", type=click.FloatRange(0.001, None), help="Messages per second at most.")
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
    "--timeout",
    type=click.FloatRange(1, 600),
    default=30.0,
    show_default=True,
    help="SMTP timeout in seconds.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def send(
    issue_dir: Path,
    to_reviewers: bool,
    to: tuple[str, ...],
    list_name: str | None,
    yes: bool,
    dry_run_to: Path | None,
    profile: str | None,
    smtp_host: str | None,
    smtp_port: int | None,
    tls: str | None,
    insecure: bool,
    cafile: str | None,
    concurrency: int | None,
    rate: float | None,
    max_per_hour: int | None,
    max_per_day: int | None,
    max_attempts: int,
    retry_base: float,
    throttle_pause: float,
    journal_path: Path | None,
    uncertain: str,
    force: bool,
    secret_file: Path | None,
    timeout: float,
    quiet: bool,
) -> int:
    """Send test copies, or the real send to a list: personalized, throttled, resumable.

    \b
    Examples:
      dispatch send issues/2026-q1 --test                      # the reviewers in dispatch.yaml
      dispatch send issues/2026-q1 --to me@example.org
      dispatch send issues/2026-q1 --list subscribers --dry-run out.mbox
      dispatch send issues/2026-q1 --list subscribers          # shows the plan, asks, sends
      dispatch send issues/2026-q1 --list subscribers --yes    # resumes where it stopped

    Credentials come from DISPATCH_SMTP_USER and DISPATCH_SMTP_PASSWORD, the
    unsubscribe-token secret from DISPATCH_UNSUBSCRIBE_SECRET (or --secret-file).
    """
    import asyncio

    from dispatch_mail.delivery import campaign
    from dispatch_mail.delivery.engine import SendOptions
    from dispatch_mail.errors import UsageError

    testing = to_reviewers or bool(to)
    if testing and list_name:
        raise UsageError("--test/--to and --list are separate sends: choose one")
    if not testing and not list_name:
        raise UsageError("say who gets it: --test (reviewers), --to ADDRESS, or --list NAME_OR_CSV")
    prepared = campaign.prepare(
        issue_dir,
        secret_file=secret_file,
        test=testing,
        secret_required=not testing and dry_run_to is None,
    )
    if prepared.secret_is_ephemeral:
        echo(
            "note: no DISPATCH_UNSUBSCRIBE_SECRET; unsubscribe links in these copies use a throwaway secret",
            err=True,
        )
    project = prepared.project
    recipients = campaign.test_recipients(project, list(to), to_reviewers) if testing else None

    if dry_run_to is not None:
        count, excluded = campaign.dry_run(prepared, recipients, list_name, dry_run_to)
        for exclusion in excluded:
            echo(f"excluded: {exclusion}", err=True)
        echo(
            f"dry run: {count} message{'s' if count != 1 else ''} written to {dry_run_to}; nothing was sent"
        )
        return 0

    settings, defaults = campaign.smtp_settings(
        project, profile, smtp_host, smtp_port, tls, insecure, cafile, timeout
    )
    options = SendOptions(
        concurrency=concurrency or defaults.get("concurrency") or 4,
        rate=rate if rate is not None else defaults.get("rate"),
        max_per_hour=max_per_hour,
        max_per_day=max_per_day,
        max_attempts=max_attempts,
        retry_base=retry_base,
        throttle_pause=throttle_pause,
    )
    if testing:
        assert recipients is not None
        summary, failures = asyncio.run(campaign.send_test(prepared, recipients, settings, options))
        for address, reply in failures:
            echo(f"not delivered: {address}: {reply}", err=True, fg="red")
        echo(
            f"test copies: {summary.sent} sent to {', '.join(r.email for r in recipients)} via {settings.describe()}"
        )
        return 1 if failures else 0

    assert list_name is not None
    journal, plan = campaign.open_send(
        prepared, list_name, journal_path=journal_path, force=force, uncertain=uncertain
    )
    with journal:
        plan.relay, plan.concurrency, plan.rate = (
            settings.describe(),
            options.concurrency,
            options.rate,
        )
        echo(plan.describe())
        if plan.to_send == 0:
            echo(
                "nothing to send: every recipient was already reached or has failed (see dispatch status)"
            )
            return _exit_for(journal.counts())
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("not a terminal: add --yes to send without asking")
            if not click.confirm(f"Send {plan.to_send:,} messages now?", default=False):
                echo("nothing sent")
                return 0
        progress = None if quiet or not sys.stderr.isatty() else _progress_printer(plan.to_send)
        try:
            summary = asyncio.run(campaign.run_send(journal, prepared, settings, options, progress))
        except DispatchError as exc:
            if progress:
                click.echo("", err=True)
            # the error first, then how to go on: the last line is the one to copy
            echo(f"error: {exc}", err=True, fg="red")
            echo(f"resume with: {_resume_command()}", err=True)
            return exc.exit_code
        except (
            KeyboardInterrupt
        ):  # a second Ctrl-C: stopped at once, the journal knows who was in flight
            echo(
                "\ninterrupted at once; the messages that were in flight are settled when you resume",
                err=True,
            )
            echo(f"resume with: {_resume_command()}", err=True)
            return 130
        counts = journal.counts()
    if progress:
        click.echo("", err=True)
    echo(
        f"sent {summary.sent:,}, failed {summary.failed:,}, still pending {counts['pending']:,}, "
        f"in {summary.duration:.1f}s ({summary.rate:.0f}/s); {counts['sent']:,} of {sum(counts.values()):,} reached in all"
    )
    if summary.possibly_duplicated:
        echo(
            f"note: {summary.possibly_duplicated} message(s) were retried after the connection dropped during DATA; "
            "the server may have accepted the first copy (RFC 1047)",
            err=True,
        )
    if summary.interrupted:
        echo("interrupted: the messages in flight were finished; the rest were not sent", err=True)
    if summary.stopped_reason:
        echo(f"stopped: {summary.stopped_reason}", err=True)
    if summary.interrupted or summary.stopped_reason or counts["pending"]:
        echo(f"resume with: {_resume_command()}", err=True)
    if summary.interrupted:
        return 130
    return _exit_for(counts)


def _exit_for(counts: dict[str, int]) -> int:
    return 1 if counts.get("failed") else 0


def _resume_command() -> str:
    import shlex

    args = ["dispatch", *sys.argv[1:]]
    if "--yes" not in args:
        args.append("--yes")
    return " ".join(shlex.quote(a) for a in args)


def _progress_printer(total: int):
    import time

    start = time.monotonic()

    def show(summary, counts) -> None:
        done = summary.sent + summary.failed
        elapsed = max(time.monotonic() - start, 1e-6)
        rate = summary.sent / elapsed
        left = (total - done) / rate if rate > 0 else 0
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        click.echo(
            f"\r[{bar}] {done:,}/{total:,} {rate:,.0f}/s {int(left) // 60}m{int(left) % 60:02d}s left ",
            nl=False,
            err=True,
        )

    return show


@main.command()
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
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
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

    \b
    Example:
      dispatch status issues/2026-q1
      dispatch status issues/2026-q1 --failures-csv failed.csv
    """
    import csv
    import io
    import json

    from dispatch_mail.delivery.journal import Journal
    from dispatch_mail.project.files import atomic_write
    from dispatch_mail.project.loader import load, shown_path

    project, issue = load(issue_dir)
    if journal_path:
        paths = [journal_path]
    else:
        folder = project.root / "build" / issue.slug
        pattern = f"send-{list_name}.journal" if list_name else "send-*.journal"
        paths = sorted(folder.glob(pattern))
        if not paths:
            from dispatch_mail.errors import UsageError

            raise UsageError(
                f"no send journal for {issue.slug} in {shown_path(folder)} (nothing sent yet?)"
            )
    report = []
    failure_rows: list[list[object]] = []
    for path in paths:
        with Journal.open(path, create=False) as journal:
            counts = journal.counts()
            failures = list(journal.rows("failed"))
            entry = {
                "journal": shown_path(path),
                "counts": counts,
                "uncertain": journal.uncertain_count(),
                "failures": [
                    {"email": r.email, "code": r.last_code, "reply": r.last_reply} for r in failures
                ],
                "excluded": [str(e) for e in journal.exclusions()] if excluded else [],
            }
            report.append(entry)
            failure_rows += [[r.email, r.last_code or "", r.last_reply or ""] for r in failures]
    if failures_csv:  # every journal's failures in one file (written per journal, the last one won)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["email", "code", "reply"])
        writer.writerows(failure_rows)
        atomic_write(failures_csv, buffer.getvalue())
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return 0
    for entry in report:
        c = entry["counts"]
        total = sum(c.values())
        echo(
            f"{entry['journal']}: {c['sent']:,}/{total:,} sent, {c['pending']:,} pending, {c['failed']:,} failed, "
            f"{c['held']:,} held, {c['sending']:,} in flight"
        )
        if entry["uncertain"]:
            echo(
                f"  {entry['uncertain']} interrupted in flight at some point (possible duplicates)"
            )
        for f in entry["failures"][:50]:
            echo(f"  failed: {f['email']}: {f['reply']}")
        if len(entry["failures"]) > 50:
            echo(f"  … and {len(entry['failures']) - 50} more (--failures-csv FILE for all)")
        for line in entry["excluded"]:
            echo(f"  excluded: {line}")
    if failures_csv:
        echo(f"failures written to {failures_csv}")
    return 0


@main.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--open", "open_browser", is_flag=True, help="Open the preview in the default browser."
)
@handle_errors
def preview(issue_dir: Path, port: int, open_browser: bool) -> int:
    """Serve the issue on 127.0.0.1, rebuilding and reloading on every change.

    Switches in the page show the HTML at phone and desktop width, in dark mode,
    and the plaintext part. Edits to the manifest, dispatch.yaml or a template
    rebuild the issue and reload the browser; build errors show in the page.

    \b
    Example:
      dispatch preview issues/2026-q1 --open
    """
    from dispatch_mail.browser.server import serve

    serve(issue_dir, port=port, open_browser=open_browser, log=lambda line: echo(line, err=True))
    return 0


@main.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Folder for the PNGs (default build/<slug>/).",
)
@click.option(
    "--chromium",
    type=click.Path(dir_okay=False),
    envvar="DISPATCH_CHROMIUM",
    help="Chromium executable (default: Debian's /usr/bin/chromium).",
)
@handle_errors
def screenshot(issue_dir: Path, out_dir: Path | None, chromium: str | None) -> int:
    """Screenshots in headless Chromium: desktop.png, mobile.png (375 px) and dark.png.

    \b
    Example:
      dispatch screenshot issues/2026-q1 --out /tmp/shots
    """
    from dispatch_mail.browser.screenshot import take_screenshots
    from dispatch_mail.publish.build import build_issue

    result = build_issue(issue_dir, write=False)
    target = out_dir or (result.out_dir)
    for path in take_screenshots(result.rendered.html, target, chromium=chromium).values():
        echo(f"wrote {path}")
    return 0


@main.command()
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


@main.command()
@click.argument("folder", required=False, default=".", type=click.Path(path_type=Path))
@click.option(
    "--name", default="Example Newsletter", show_default=True, help="The newsletter's name."
)
@handle_errors
def init(folder: Path, name: str) -> int:
    """Start a newsletter project: dispatch.yaml, templates/, a first issue, .gitignore, a CI workflow.

    Refuses to overwrite any existing file.

    \b
    Example:
      dispatch init my-newsletter --name "My Newsletter"
    """
    from dispatch_mail.authoring.scaffold import init_project

    created = init_project(folder, name)
    for path in created.files:
        echo(f"created {path}")
    echo(
        "next: edit dispatch.yaml, then `dispatch build issues/<slug>` and `dispatch preview issues/<slug>`"
    )
    return 0


@main.command()
@click.argument("slug")
@click.option(
    "--from",
    "previous",
    type=click.Path(path_type=Path),
    help="The issue to start from (default: the newest).",
)
@handle_errors
def new(slug: str, previous: Path | None) -> int:
    """Start issues/SLUG/issue.yaml from the previous issue's structure, with its items emptied.

    \b
    Example:
      dispatch new 2026-q2
      dispatch new 2026-q2 --from issues/2026-q1
    """
    from dispatch_mail.authoring.scaffold import new_issue
    from dispatch_mail.project.loader import shown_path

    target = new_issue(slug, Path.cwd(), previous)
    echo(
        f"created {shown_path(target / 'issue.yaml')}; `dispatch build {shown_path(target)}` lists the fields to fill in"
    )
    return 0


@main.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.argument("url")
@click.option(
    "--section",
    help="The section's heading, id or kind (default: the first reading list or links section).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.5, 120),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the page.",
)
@click.option(
    "--keep-url", is_flag=True, help="Keep the URL as given instead of where its redirects lead."
)
@handle_errors
def add(issue_dir: Path, url: str, section: str | None, timeout: float, keep_url: bool) -> int:
    """Fetch a page and append it (title, description) to a section of the issue.

    \b
    Example:
      dispatch add issues/2026-q2 https://example.org/post --section "Ecosystem reading list"
    """
    from dispatch_mail.authoring.curate import add_link

    label, page = add_link(issue_dir, url, section, timeout=timeout, keep_url=keep_url)
    echo(f"added {page.title or page.url!r} to {label}")
    if not page.description:
        echo("note: the page has no description: write the item's text yourself", err=True)
    return 0


@main.command()
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
    """Export the built issue: one .eml, an mbox of test messages, one HTML file, or a zip for an ESP.

    \b
    Example:
      dispatch export issues/2026-q1 --format zip --unsubscribe-tag '*|UNSUB|*'
    """
    from dispatch_mail.publish.export import export_issue

    echo(f"wrote {export_issue(issue_dir, fmt, out, unsubscribe_tag=unsubscribe_tag)}")
    return 0


def _summary(result) -> dict:
    """A build's summary as data (for --format json)."""
    from dispatch_mail.project.loader import shown_path

    return {
        "issue": result.issue.slug,
        "out": shown_path(result.out_dir),
        "sections": len(result.issue.sections),
        "links": result.link_count,
        "files": result.files,
        "warnings": result.warnings,
        "timings_ms": {k: round(v * 1000, 2) for k, v in result.timings.items()},
    }


def _report(result, quiet: bool, verbose: bool) -> None:
    from dispatch_mail.publish.build import describe

    if quiet:
        for warning in result.warnings:
            echo(f"warning: {warning}", err=True, fg="yellow")
        return
    echo(describe(result))
    if verbose:
        echo("  timings: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in result.timings.items()))


if __name__ == "__main__":  # pragma: no cover
    main()
