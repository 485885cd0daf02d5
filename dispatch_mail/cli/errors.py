"""The one place where errors become messages and exit codes: never a traceback.

Exit codes: 0 ok, 1 content or delivery errors, 2 usage errors, 3 the relay refused our TLS or
login, 75 (send) some recipients deferred, 130 interrupted.
Library errors name no command-line options; a ``hint`` on the error is turned into
advice about this CLI's options here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from dispatch_mail.cli.output import echo, plural
from dispatch_mail.errors import ContentError, DispatchError

P = ParamSpec("P")

# error.hint → what to add to its message, in this CLI's words
HINTS: dict[str, str] = {
    "smtp_host": "; or give --smtp-host",
    "by_hand": "; add the item by hand with --title and --url",
    "insecure": " (--tls starttls or implicit; or --insecure if you really mean it)",
    "tls": ": use --tls starttls or implicit",
    "force": "; --force sends the new version to the rest",
    "secret_file": " (or give --secret-file)",
    "reviewers": "; add some or use --to ADDRESS",
    "recipients": ": use --test (the reviewers), --to ADDRESS, or --list NAME",
    "section": ": name one with --section",
    "previous": ": name one with --from, or write issues/<slug>/issue.yaml",
    "port": " (choose another --port; 0 takes any free one)",
    "chromium": " (--chromium or DISPATCH_CHROMIUM)",
    "name": " (--name)",
    "unsubscribe_tag": " (--unsubscribe-tag)",
    "allow_private": "; --allow-private fetches it anyway",
    "mailbox": ": give --mbox FILE, --maildir DIR or --imap URL",
    "dns_server": "; name one with --dns-server HOST[:PORT] (or DISPATCH_DNS_SERVER)",
}


def message_of(exc: DispatchError) -> str:
    """The error's text with this CLI's hint, if it has one."""
    return f"{exc}{HINTS.get(exc.hint or '', '')}"


def error_lines(exc: DispatchError) -> list[str]:
    """One ``error:`` line per problem: a content error carries every problem found."""
    if isinstance(exc, ContentError):
        return [f"error: {problem}" for problem in exc.problems]
    return [f"error: {message_of(exc)}"]


def report_error(exc: DispatchError) -> None:
    for line in error_lines(exc):
        echo(line, err=True, fg="red")


def handle_errors(func: Callable[P, int | None]) -> Callable[P, None]:
    """Run a command; turn its result or error into the exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            code = func(*args, **kwargs)
        except ContentError as exc:
            report_error(exc)
            echo(f"{plural(len(exc.problems), 'problem')} found; nothing was written", err=True)
            sys.exit(exc.exit_code)
        except DispatchError as exc:
            report_error(exc)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug of ours: say so in one line
            if os.environ.get("DISPATCH_DEBUG"):
                raise
            echo(
                f"internal error: {type(exc).__name__}: {exc} "
                "(set DISPATCH_DEBUG=1 for a traceback)",
                err=True,
                fg="red",
            )
            sys.exit(1)
        sys.exit(code or 0)

    return wrapper
