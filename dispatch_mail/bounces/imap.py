"""An IMAP folder as the return mailbox: verified TLS, read with PEEK, handled messages moved.

``imaps://`` is implicit TLS (port 993); ``imap://`` is allowed only with
STARTTLS, and refused when the server does not offer it: the password never
crosses the network in clear. Certificates are verified against the system's
CAs, or the file SSL_CERT_FILE names (``ssl.create_default_context()``). The
password comes from DISPATCH_IMAP_PASSWORD and is never shown. Only the UIDs of
handled messages are moved: MOVE (RFC 6851) when the server has it, else COPY,
\\Deleted and UID EXPUNGE (RFC 4315) of exactly those UIDs.
"""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from dispatch_mail.bounces.message import MAX_MESSAGE
from dispatch_mail.errors import MailboxError

TIMEOUT = 30.0  # seconds for connecting and for each command


def _quoted(name: str) -> str:
    """A mailbox name as an IMAP quoted string (ASCII only: modified UTF-7 is not written here)."""
    if not name.isascii() or any(ord(c) < 32 for c in name):
        raise MailboxError(f"the IMAP folder name {name!r} must be plain ASCII")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapSource:
    """One selected IMAP folder."""

    can_move = True

    def __init__(self, conn: imaplib.IMAP4, location: str, folder: str) -> None:
        self.conn = conn
        self.location = location
        self.folder = folder

    @classmethod
    def connect(cls, url: str, password: str | None, *, writable: bool) -> ImapSource:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("imaps", "imap"):
            raise MailboxError(f"{url!r}: an IMAP mailbox is imaps://user@host[:port]/FOLDER")
        if parts.password is not None:
            raise MailboxError(
                "the IMAP URL must not hold the password: set DISPATCH_IMAP_PASSWORD"
            )
        try:
            port = parts.port or (993 if scheme == "imaps" else 143)
        except ValueError:
            raise MailboxError(f"{url!r}: the port is not a number") from None
        user, host = unquote(parts.username or ""), parts.hostname or ""
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        location = f"{scheme}://{user}@{host}:{port}/{folder}"
        if not user or not host:
            raise MailboxError(
                f"{location}: the URL needs a user and a host (imaps://user@host/FOLDER)"
            )
        if not password:
            raise MailboxError(
                f"{location}: set DISPATCH_IMAP_PASSWORD to log in", mailbox=location
            )
        conn = cls._open(scheme, host, port, location)
        try:
            _login(conn, user, password, location)
            kind, data = conn.capability()  # they grow after login (MOVE, UIDPLUS, …)
            if kind == "OK" and data and isinstance(data[-1], bytes):
                conn.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())
            kind, data = conn.select(_quoted(folder), readonly=not writable)
            if kind != "OK":
                raise MailboxError(
                    f"{location}: the server has no folder {folder!r} ({_said(data)})",
                    mailbox=location,
                )
        except BaseException:
            _logout(conn)
            raise
        return cls(conn, location, folder)

    @staticmethod
    def _open(scheme: str, host: str, port: int, location: str) -> imaplib.IMAP4:
        context = ssl.create_default_context()  # verified, system CAs or SSL_CERT_FILE
        try:
            if scheme == "imaps":
                return imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT)
            conn = imaplib.IMAP4(host, port, timeout=TIMEOUT)
            if "STARTTLS" not in conn.capabilities:
                _logout(conn)
                raise MailboxError(
                    f"{location}: the server does not offer STARTTLS; refusing to log in "
                    "without TLS (use imaps:// if it has implicit TLS)",
                    mailbox=location,
                )
            conn.starttls(ssl_context=context)
            return conn
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(
                f"{location}: the server's TLS certificate is not trusted ({exc.verify_message}); "
                "its CA must be in the system store or in the file SSL_CERT_FILE names",
                mailbox=location,
            ) from None
        except (ssl.SSLError, imaplib.IMAP4.error) as exc:
            raise MailboxError(
                f"{location}: TLS with the server failed ({exc})", mailbox=location
            ) from None
        except OSError as exc:
            raise MailboxError(
                f"{location}: cannot connect: {exc.strerror or exc}", mailbox=location
            ) from None

    def messages(self) -> Iterator[tuple[str, bytes]]:
        for uid in self._uids():
            raw = self._fetch(uid)
            if raw is not None:
                yield f"uid {uid}", raw

    def _uids(self) -> list[str]:
        data = self._uid("search the folder", "SEARCH", "ALL")
        if not data or not isinstance(data[0], bytes):
            return []
        return [uid.decode("ascii") for uid in data[0].split() if uid.isdigit()]

    def _fetch(self, uid: str) -> bytes | None:
        # BODY.PEEK: reading sets no \Seen flag; <0.N>: at most MAX_MESSAGE bytes come over the wire
        data = self._uid(f"fetch message {uid}", "FETCH", uid, f"(BODY.PEEK[]<0.{MAX_MESSAGE}>)")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return item[1]
        return None

    def move(self, keys: list[str], folder: str) -> int:
        """Move the handled messages (keys as messages() named them) to ``folder``; how many."""
        uids = [key.removeprefix("uid ") for key in keys if key.startswith("uid ")]
        if not uids:
            return 0
        target = _quoted(folder)
        self.conn.create(target)  # "already exists" is fine: the COPY/MOVE below says if it is not
        for start in range(0, len(uids), 200):
            batch = ",".join(uids[start : start + 200])
            if "MOVE" in self.conn.capabilities:
                self._uid(f"move the handled messages to {folder!r}", "MOVE", batch, target)
                continue
            self._uid(f"copy the handled messages to {folder!r}", "COPY", batch, target)
            self._uid(
                "mark the moved messages deleted", "STORE", batch, "+FLAGS.SILENT", r"(\Deleted)"
            )
            if (
                "UIDPLUS" in self.conn.capabilities
            ):  # a bare EXPUNGE would take others' \Deleted too
                self._uid("expunge the moved messages", "EXPUNGE", batch)
        return len(uids)

    def _uid(self, what: str, command: str, *args: str) -> list[Any]:
        """One UID command; a refusal or a dropped connection is a MailboxError naming ``what``."""
        try:
            kind, data = self.conn.uid(command, *args)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(
                f"{self.location}: cannot {what}: {exc}", mailbox=self.location
            ) from None
        if kind != "OK":
            raise MailboxError(
                f"{self.location}: cannot {what} ({_said(data)})", mailbox=self.location
            )
        return list(data or [])

    def close(self) -> None:
        try:
            self.conn.close()
        except (imaplib.IMAP4.error, OSError):
            pass
        _logout(self.conn)


def _login(conn: imaplib.IMAP4, user: str, password: str, location: str) -> None:
    try:
        conn.login(user, password)
    except imaplib.IMAP4.error as exc:
        said = str(exc).replace(password, "…") if password else str(exc)
        raise MailboxError(
            f"{location}: the server refused the login ({said[:200]})", mailbox=location
        ) from None
    except OSError as exc:
        raise MailboxError(
            f"{location}: the connection failed during login: {exc}", mailbox=location
        ) from None


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        pass


def _said(data: list[object] | object) -> str:
    items = data if isinstance(data, list) else [data]
    text = " ".join(i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i) for i in items)
    return " ".join(text.split())[:200] or "no reason given"
