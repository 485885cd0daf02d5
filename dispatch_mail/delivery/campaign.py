"""`dispatch send` and `dispatch status`: the plan, test sends, dry runs and the real, resumable send.

The engine (send.py) knows SMTP and the journal; this module knows the
project: which list, which relay, which journal, and what to tell the person
sending before anything leaves the machine.
"""

from __future__ import annotations

import hashlib
import mailbox
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from dispatch_mail.delivery.audience import (
    Exclusion,
    Recipient,
    normalize,
    read_suppressed,
    scan_audience,
)
from dispatch_mail.delivery.engine import Sender, SendOptions, SendSummary, SmtpSettings
from dispatch_mail.delivery.journal import Journal, message_id_part
from dispatch_mail.errors import ContentError, DispatchError, Problem, UsageError
from dispatch_mail.mail.eml import DkimSigner, PersonalMessages
from dispatch_mail.mail.tokens import load_secret
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.loader import load, shown_path
from dispatch_mail.project.schema import validate_email
from dispatch_mail.project.settings import PROJECT_FILE, Project
from dispatch_mail.render import render_issue

USER_ENV, PASSWORD_ENV, DKIM_KEY_ENV = (
    "DISPATCH_SMTP_USER",
    "DISPATCH_SMTP_PASSWORD",
    "DISPATCH_DKIM_KEY_FILE",
)
ESTIMATED_RATE_UNLIMITED = (
    1000.0  # messages/s we plan with when no rate is set (docs/performance.md)
)


@dataclass
class Prepared:
    """An issue rendered once for personal sending, with its project."""

    project: Project
    issue: Issue
    messages: PersonalMessages
    content_hash: str
    secret_is_ephemeral: bool = False


@dataclass
class Plan:
    list_label: str
    journal_path: Path
    relay: str
    concurrency: int
    rate: float | None
    counts: dict[str, int]
    excluded: list[Exclusion]
    recovered: int = 0
    recover_policy: str = "resend"
    new_send: bool = True

    @property
    def to_send(self) -> int:
        return self.counts.get("pending", 0)

    @property
    def estimated_seconds(self) -> float:
        rate = self.rate or ESTIMATED_RATE_UNLIMITED
        return self.to_send / rate

    def describe(self) -> str:
        c = self.counts
        total = sum(c.values())
        lines = [
            f"Send plan for {self.list_label}",
            f"  recipients:   {total:,} in the journal {shown_path(self.journal_path)}",
            f"  to send now:  {self.to_send:,}",
        ]
        if not self.new_send:
            lines.append(
                f"  resuming:     {c.get('sent', 0):,} already sent (never sent again), {c.get('failed', 0):,} failed"
            )
        if c.get("held"):
            lines.append(
                f"  held:         {c['held']:,} interrupted in flight, held for review (--uncertain resend sends them)"
            )
        if self.recovered:
            what = (
                "will be sent again" if self.recover_policy == "resend" else "are held for review"
            )
            lines.append(
                f"  in flight:    {self.recovered:,} were in flight when the last run stopped; the server may have them; they {what}"
            )
        if self.excluded:
            counts: dict[str, int] = {}
            for e in self.excluded:
                key = e.reason.split(":")[0]
                counts[key] = counts.get(key, 0) + 1
            detail = ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items()))
            lines.append(
                f"  excluded:     {len(self.excluded):,} ({detail}); see `dispatch status --excluded`"
            )
        rate = f"{self.rate:g}/s" if self.rate else "as fast as the relay accepts"
        lines += [
            f"  relay:        {self.relay}, {self.concurrency} connection{'s' if self.concurrency != 1 else ''}, {rate}",
            f"  estimated:    {_duration(self.estimated_seconds)}",
        ]
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s" if m else f"{s}s"


# ------------------------------------------------------------------ settings
def smtp_settings(
    project: Project,
    profile: str | None = None,
    host: str | None = None,
    port: int | None = None,
    tls: str | None = None,
    insecure: bool = False,
    cafile: str | None = None,
    timeout: float = 30.0,
) -> tuple[SmtpSettings, dict]:
    """The relay from a named profile of dispatch.yaml, overridden by command-line values.

    Returns the settings and the profile's own send defaults (concurrency, rate).
    """
    defaults: dict = {}
    base_host, base_port, base_tls = None, None, None
    if host is None or profile:
        name = profile or "default"
        chosen = project.smtp.get(name)
        if chosen is None:
            if profile or host is None:
                known = ", ".join(project.smtp) or "none"
                raise UsageError(
                    f"no SMTP profile {name!r} in dispatch.yaml (profiles: {known}); or give --smtp-host"
                )
        else:
            base_host, base_port, base_tls = chosen.host, chosen.port, chosen.tls
            defaults = {"concurrency": chosen.concurrency, "rate": chosen.rate}
    final_tls = tls or base_tls or "starttls"
    final_port = port or base_port or {"implicit": 465, "starttls": 587, "none": 25}[final_tls]
    return (
        SmtpSettings(
            host=host or base_host or "localhost",
            port=final_port,
            tls=final_tls,
            username=os.environ.get(USER_ENV) or None,
            password=os.environ.get(PASSWORD_ENV) or None,
            insecure=insecure,
            timeout=timeout,
            cafile=cafile,
        ),
        defaults,
    )


def _dkim_signer(project: Project) -> DkimSigner | None:
    if project.dkim is None:
        return None
    key_path = os.environ.get(DKIM_KEY_ENV) or project.dkim.key_file
    if not key_path:
        raise UsageError(f"dkim: in dispatch.yaml needs key_file or {DKIM_KEY_ENV}")
    path = Path(key_path) if Path(key_path).is_absolute() else project.root / key_path
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read the DKIM key {shown_path(path)}: {exc.strerror or exc}"
        ) from None
    return DkimSigner(project.dkim.domain, project.dkim.selector, key)


# ------------------------------------------------------------------ preparing
def prepare(
    issue_dir: Path,
    *,
    secret_file: Path | None = None,
    test: bool = False,
    secret_required: bool = True,
) -> Prepared:
    """Load, validate and render the issue once, with merge tokens for per-recipient fields."""
    project, issue = load(Path(issue_dir))
    if not test and "{token}" not in project.footer.unsubscribe_url:
        # RFC 8058: the one-click POST carries nothing but the URL, so it must name the recipient
        raise ContentError(
            [
                Problem(
                    shown_path(project.root / PROJECT_FILE),
                    0,
                    0,
                    "footer.unsubscribe_url",
                    "has no {token}: one-click unsubscribe needs a URL that identifies the recipient; "
                    "a list send is refused without it",
                )
            ]
        )
    secret = load_secret(secret_file, required=secret_required)
    ephemeral = secret is None
    rendered = render_issue(project, issue, personal=True)
    digest = hashlib.sha256()
    for part in (issue.subject, rendered.text, rendered.html):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    messages = PersonalMessages(
        project,
        issue,
        rendered,
        secret=secret or secrets.token_bytes(32),
        test=test,
        subject_prefix=(project.subject_prefix or "") if test else "",
        dkim_signer=_dkim_signer(project),
    )
    return Prepared(project, issue, messages, digest.hexdigest(), ephemeral)


def resolve_list(project: Project, name_or_csv: str) -> tuple[str, Path, Path | None]:
    """(label, recipients CSV, suppression CSV) for a list name of dispatch.yaml or a CSV path."""
    if name_or_csv in project.lists:
        entry = project.lists[name_or_csv]
        csv_path = project.root / entry.csv
        suppression = project.root / entry.suppression if entry.suppression else None
        if not csv_path.is_file():
            raise UsageError(f"list {name_or_csv!r}: {shown_path(csv_path)} does not exist")
        return name_or_csv, csv_path, suppression
    path = Path(name_or_csv)
    if path.is_file():
        return path.stem, path, None
    known = ", ".join(project.lists) or "none"
    raise UsageError(f"{name_or_csv!r} is neither a list in dispatch.yaml ({known}) nor a CSV file")


def default_journal(project: Project, issue: Issue, label: str) -> Path:
    return project.root / "build" / issue.slug / f"send-{label}.journal"


def open_send(
    prepared: Prepared,
    list_name: str,
    *,
    journal_path: Path | None = None,
    suppression: Path | None = None,
    force: bool = False,
    uncertain: str = "resend",
) -> tuple[Journal, Plan]:
    """Bind the journal to this issue, add the list (streamed), recover interrupted rows, make the plan."""
    project, issue = prepared.project, prepared.issue
    label, csv_path, list_suppression = resolve_list(project, list_name)
    path = journal_path or default_journal(project, issue, label)
    journal = Journal.open(path)
    try:
        new = journal.bind(issue.slug, prepared.content_hash, force=force)
        suppressed = read_suppressed(suppression or list_suppression)
        domain = project.sender.domain
        journal.add(scan_audience(csv_path, suppressed), domain, issue.slug)
        recovered = journal.recover(resend=uncertain == "resend")
        if uncertain == "resend":
            journal.release_held()
    except BaseException:
        journal.close()
        raise
    plan = Plan(
        list_label=f"{label} ({shown_path(csv_path)})",
        journal_path=path,
        relay="",
        concurrency=0,
        rate=None,
        counts=journal.counts(),
        excluded=journal.exclusions(),
        recovered=len(recovered),
        recover_policy=uncertain,
        new_send=new,
    )
    return journal, plan


async def run_send(
    journal: Journal,
    prepared: Prepared,
    settings: SmtpSettings,
    options: SendOptions,
    progress: Callable[[SendSummary, dict[str, int]], None] | None = None,
) -> SendSummary:
    return await Sender(journal, prepared.messages, settings, options, progress).run()


# ------------------------------------------------------------------ test sends
def test_recipients(project: Project, to: list[str], reviewers: bool) -> list[Recipient]:
    addresses = ([str(a) for a in project.reviewers] if reviewers else []) + list(to)
    if reviewers and not project.reviewers:
        raise UsageError("no reviewers: in dispatch.yaml; add some or use --to ADDRESS")
    out: list[Recipient] = []
    seen: set[str] = set()
    for address in addresses:
        address = normalize(address)
        problem = validate_email(address)
        if problem:
            raise UsageError(f"--to {address}: {problem}")
        if address.casefold() not in seen:
            seen.add(address.casefold())
            out.append(Recipient(address, {"email": address}))
    if not out:
        raise UsageError(
            "nobody to send to: use --test (the reviewers), --to ADDRESS, or --list NAME"
        )
    return out


async def send_test(
    prepared: Prepared, recipients: list[Recipient], settings: SmtpSettings, options: SendOptions
) -> tuple[SendSummary, list[tuple[str, str]]]:
    """Send test copies through the same engine, with a throwaway journal; returns failures too."""
    with tempfile.TemporaryDirectory(prefix="dispatch-test-") as folder:
        journal = Journal.open(Path(folder) / "test.journal")
        try:
            journal.bind(prepared.issue.slug, prepared.content_hash)
            domain = prepared.project.sender.domain
            journal.add(recipients, domain, prepared.issue.slug)
            summary = await Sender(journal, prepared.messages, settings, options).run()
            failures = [(r.email, r.last_reply or "") for r in journal.rows("failed")]
            failures += [(r.email, r.last_reply or "not sent") for r in journal.rows("pending")]
        finally:
            journal.close()
    return summary, failures


# ------------------------------------------------------------------ dry run
def dry_run(
    prepared: Prepared, recipients: list[Recipient] | None, list_name: str | None, out: Path
) -> tuple[int, list[Exclusion]]:
    """Write every message as it would be sent, to a folder of .eml files or an mbox; no connection."""
    excluded: list[Exclusion] = []
    if recipients is None:
        assert list_name is not None
        _, csv_path, suppression = resolve_list(prepared.project, list_name)
        items = scan_audience(csv_path, read_suppressed(suppression))
    else:
        items = iter(recipients)
    date = format_datetime(datetime.now(UTC))
    domain = prepared.project.sender.domain
    is_mbox = out.suffix == ".mbox"
    count = 0
    box = None
    tmp: Path | None = None
    try:
        if is_mbox:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
            box = mailbox.mbox(str(tmp), create=True)
            box.lock()
        for item in items:
            if isinstance(item, Exclusion):
                excluded.append(item)
                continue
            message_id = f"<{message_id_part(prepared.issue.slug)}.dry.{count}.{secrets.token_hex(6)}@{domain}>"
            data = prepared.messages.render(item.email, item.fields, message_id, date)
            count += 1
            if box is not None:
                box.add(mailbox.mboxMessage(data))
            else:
                safe = "".join(c if c.isalnum() or c in "@._-" else "_" for c in item.email)
                atomic_write(out / f"{count:06d}-{safe}.eml", data)
        if box is not None:
            box.close()  # flushes and unlocks
            box = None
            os.replace(tmp, out)  # type: ignore[arg-type]
    except BaseException as exc:
        # a failed dry run leaves no half-written mbox beside the previous one (disk full, Ctrl-C)
        if box is not None:
            try:
                box.close()
            except OSError:
                pass
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise DispatchError(
                f"cannot write the dry run to {shown_path(out)}: {exc.strerror or exc}"
            ) from None
        raise
    return count, excluded
