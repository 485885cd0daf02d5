"""Return mailboxes: an mbox file, a maildir, or an IMAP folder over verified TLS.

An mbox or a maildir is only read, never changed (not even a flag): move what
was handled with your own tools, or read the mailbox over IMAP with a folder to
move handled messages to. Each message is read to at most MAX_MESSAGE bytes.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dispatch_mail.bounces.message import MAX_MESSAGE
from dispatch_mail.errors import MailboxError
from dispatch_mail.project.paths import shown_path

PASSWORD_ENV = "DISPATCH_IMAP_PASSWORD"


class Mailbox(Protocol):
    """Messages to classify, each under a key that names it in the report."""

    location: str  # as shown to the user (never a password)
    can_move: bool

    def messages(self) -> Iterator[tuple[str, bytes]]: ...

    def move(self, keys: list[str], folder: str) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class MailboxSpec:
    """Which mailbox to read: exactly one of the three."""

    mbox: Path | None = None
    maildir: Path | None = None
    imap: str | None = None  # imaps://user@host[:port]/FOLDER
    password: str | None = None  # for IMAP; from PASSWORD_ENV when None

    def open(self, *, writable: bool) -> Mailbox:
        given = [x for x in (self.mbox, self.maildir, self.imap) if x is not None]
        if len(given) != 1:
            raise MailboxError(
                "name one return mailbox: an mbox file, a maildir or an IMAP URL", hint="mailbox"
            )
        if self.mbox is not None:
            return MboxSource(self.mbox)
        if self.maildir is not None:
            return MaildirSource(self.maildir)
        from dispatch_mail.bounces.imap import ImapSource

        assert self.imap is not None
        password = self.password if self.password is not None else os.environ.get(PASSWORD_ENV)
        return ImapSource.connect(self.imap, password, writable=writable)


class _FileSource:
    can_move = False
    _box: mailbox.Mailbox[mailbox.Message]

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = shown_path(path)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        try:
            for number, key in enumerate(self._box.iterkeys(), 1):
                with self._box.get_file(key) as handle:
                    raw = handle.read(MAX_MESSAGE)
                yield self._name(number, key), raw
        except OSError as exc:
            raise MailboxError(
                f"{self.location}: cannot read the mailbox: {exc.strerror or exc}",
                mailbox=self.location,
            ) from None

    def _name(self, number: int, key: str) -> str:
        return str(number)

    def move(self, keys: list[str], folder: str) -> int:
        return 0  # files are never changed

    def close(self) -> None:
        try:
            self._box.close()
        except OSError:
            pass


class MboxSource(_FileSource):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if not path.is_file():
            raise MailboxError(f"{self.location}: no such mbox file", mailbox=self.location)
        if not os.access(path, os.R_OK):
            raise MailboxError(
                f"{self.location}: cannot read the mbox file (permission denied)",
                mailbox=self.location,
            )
        try:
            self._box = mailbox.mbox(path, create=False)
        except (OSError, mailbox.Error) as exc:
            raise MailboxError(
                f"{self.location}: cannot open the mbox file: {exc}", mailbox=self.location
            ) from None


class MaildirSource(_FileSource):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if not all((path / sub).is_dir() for sub in ("cur", "new")):
            raise MailboxError(
                f"{self.location}: not a maildir (no cur/ and new/ in it)", mailbox=self.location
            )
        try:
            self._box = mailbox.Maildir(path, factory=None, create=False)
        except (OSError, mailbox.Error) as exc:
            raise MailboxError(
                f"{self.location}: cannot open the maildir: {exc}", mailbox=self.location
            ) from None

    def _name(self, number: int, key: str) -> str:
        return key
