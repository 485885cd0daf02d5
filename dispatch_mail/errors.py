"""The error family of dispatch: every failure a user can cause has a type here, and only here.

The CLI turns these into messages and exit codes in one place (``cli/errors.py``); a
library user catches :class:`DispatchError` and reads the structured fields instead of
parsing text. Messages describe the problem, never a command-line flag: the CLI adds
those hints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    path: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    key: str  # dotted key path such as ``sections[2].items[0].url``; may be empty
    message: str

    def __str__(self) -> str:
        where = self.path
        if self.line:
            where += f":{self.line}:{self.column}" if self.column else f":{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class DispatchError(Exception):
    """Base of every error dispatch raises on purpose.

    ``hint`` names, without any command-line syntax, what the caller could change (for
    example ``"smtp_host"``); the CLI turns it into advice about its own options.
    """

    exit_code = 1

    def __init__(self, *args: object, hint: str | None = None):
        super().__init__(*args)
        self.hint = hint


class UsageError(DispatchError):
    """The command was called wrongly (missing folder, bad option combination)."""

    exit_code = 2


class ContentError(DispatchError):
    """One or more problems in a manifest, the project file or a template.

    All problems found are carried, so the user fixes everything in one pass.
    """

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]):
        self.problems = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))


class RenderError(DispatchError):
    """A template or the MJML engine failed; the message names the template."""


class WriteError(DispatchError):
    """An output could not be written (disk full, no permission); the previous one is kept."""

    def __init__(self, message: str, path: Path | None = None, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.path = path


class FetchError(DispatchError):
    """A page could not be fetched or read (``dispatch add``, ``check --links``)."""

    def __init__(self, message: str, url: str | None = None, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.url = url


class BrowserUnavailable(UsageError):
    """Screenshots need Chromium and the playwright package; one is missing or will not start."""


class ChromiumMissing(BrowserUnavailable):
    """No Chromium executable was found where we looked."""


class PlaywrightMissing(BrowserUnavailable):
    """The playwright package is not installed."""


class ScreenshotError(DispatchError):
    """Chromium started but failed to load or capture the page."""


class JournalError(DispatchError):
    """A send journal cannot be used: foreign, corrupted, or for other content."""

    def __init__(self, message: str, path: Path | None = None, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.path = path


class JournalBusy(UsageError):
    """Another send holds the journal's lease: two sends of one list at once would send twice."""

    def __init__(
        self,
        message: str,
        path: Path | None = None,
        *,
        pid: int | None = None,
        host: str | None = None,
        since: float | None = None,
    ):
        super().__init__(message)
        self.path = path
        self.pid, self.host, self.since = pid, host, since


class NothingSent(UsageError):
    """An issue has no send journal yet: ``dispatch status`` of it has nothing to show."""

    def __init__(self, message: str, *, issue: str):
        super().__init__(message)
        self.issue = issue


class DeliveryError(DispatchError):
    """The send cannot go on: the relay refuses us, or rejects the message itself."""

    def __init__(
        self,
        message: str,
        *,
        smtp_code: int | None = None,
        recipient: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, hint=hint)
        self.smtp_code = smtp_code
        self.recipient = recipient


class RecipientDataError(DispatchError):
    """One recipient's own data (name, address) makes their message unsendable.

    The send fails that recipient alone, with this reason, and goes on with the rest.
    """

    def __init__(self, message: str, recipient: str | None = None):
        super().__init__(message)
        self.recipient = recipient


class RelayTlsError(DeliveryError):
    """TLS with the relay failed (a certificate we do not trust, STARTTLS missing or refused).

    Trying again cannot help and nothing more was sent: a code of its own tells a script
    this apart from recipients that failed.
    """

    exit_code = 3


class RelayAuthError(DeliveryError):
    """The relay refused our login; nothing more was sent (exit code as :class:`RelayTlsError`)."""

    exit_code = 3


class StoreError(DispatchError):
    """The suppression store cannot be opened, read or written.

    A send never starts (or goes on) without it: it must not mail people it cannot check.
    """

    def __init__(self, message: str, *, location: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        # the store as shown to the user (a path, or a URL without its password)
        self.location = location


class MailboxError(DispatchError):
    """A return mailbox (mbox, maildir, IMAP) cannot be read, or its server refused us."""

    def __init__(self, message: str, *, mailbox: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.mailbox = mailbox


class WebhookRejected(DispatchError):
    """A relay's webhook request that is not accepted, and so changes nothing.

    ``reason`` says why, for the HTTP answer: ``"auth"`` (missing or wrong credentials),
    ``"signature"`` (a signature, certificate, topic or timestamp that does not verify),
    ``"malformed"`` (not the payload the relay documents) or ``"unavailable"`` (what
    verifying needs, such as SNS's certificate, cannot be fetched now: the relay should
    retry). The message never holds a secret, only what was wrong.
    """

    def __init__(self, message: str, *, provider: str, reason: str = "signature"):
        super().__init__(message)
        self.provider = provider
        self.reason = reason
