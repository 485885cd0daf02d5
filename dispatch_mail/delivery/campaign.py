"""Preparing a send: the issue rendered once, the relay, the list; test sends and dry runs.

The engine (engine.py) knows SMTP and the journal, and session.py runs a list send;
this module knows the project: which list, which relay, which journal.
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
    read_suppressed,
    scan_audience,
    tally_exclusions,
)
from dispatch_mail.delivery.engine import SendEngine, SendOptions, SendSummary
from dispatch_mail.delivery.journal import DEFAULT_STALE_AFTER, Journal
from dispatch_mail.delivery.plan import SendPlan, frozen_counts
from dispatch_mail.delivery.profiles import PASSWORD_ENV as PASSWORD_ENV
from dispatch_mail.delivery.profiles import USER_ENV as USER_ENV
from dispatch_mail.delivery.profiles import ProfileDefaults as ProfileDefaults
from dispatch_mail.delivery.profiles import choose_profile
from dispatch_mail.delivery.profiles import smtp_settings as smtp_settings
from dispatch_mail.delivery.screening import BatchScreen, suppressed_reasons
from dispatch_mail.delivery.smtp import SmtpSettings
from dispatch_mail.delivery.testcopies import as_member, find_member, test_address
from dispatch_mail.errors import ContentError, DispatchError, Problem, UsageError
from dispatch_mail.mail.dkim import DkimSigner
from dispatch_mail.mail.dkim_keys import DKIM_KEY_ENV, KeyFile, key_files
from dispatch_mail.mail.headers import make_message_id
from dispatch_mail.mail.personal import PersonalMessages
from dispatch_mail.mail.tokens import TokenKeys
from dispatch_mail.mail.verp import check_return_path
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.loader import load, locate, shown_path
from dispatch_mail.project.paths import journal_path as default_journal_path
from dispatch_mail.project.settings import PROJECT_FILE, Project, SmtpProfile
from dispatch_mail.render import render_issue
from dispatch_mail.suppression.base import SuppressionStore


@dataclass
class Prepared:
    """An issue rendered once for personal sending, with its project."""

    project: Project
    issue: Issue
    messages: PersonalMessages
    content_hash: str
    secret_is_ephemeral: bool = False
    profile: SmtpProfile | None = None  # the SMTP profile its copies carry the headers of


def _dkim_signer(project: Project, profile: SmtpProfile | None = None) -> DkimSigner | None:
    """The signer of dkim: (the main key, then each rotation key), checked before any send.

    Alignment is judged against the return paths this send may use: the profile's
    when it is known, else the project's and every profile's.
    """
    if project.dkim is None:
        return None
    settings = project.dkim

    def read_key(key: KeyFile) -> bytes:
        field = f"{key.field}.key_file"
        if key.key_path is None:
            raise UsageError(f"{field}: no key file given")
        try:
            return key.key_path.read_bytes()
        except OSError as exc:
            where = "" if key.field == "dkim" else f"{field}: "
            path = shown_path(key.key_path)
            raise UsageError(
                f"{where}cannot read the DKIM key {path}: {exc.strerror or exc}"
            ) from None

    main, *more = key_files(project)
    if main.key_path is None:
        raise UsageError(f"dkim: in dispatch.yaml needs key_file or {DKIM_KEY_ENV}")
    rotation = [(key.domain, key.selector, read_key(key)) for key in more]
    profiles = [profile] if profile is not None else list(project.smtp.values())
    default_path = project.return_path or project.sender.address
    return_paths = {p.return_path or default_path for p in profiles} or {default_path}
    if profile is None:
        return_paths.add(default_path)
    header_names = set(project.headers).union(*(p.headers for p in profiles))
    return DkimSigner(
        settings.domain,
        settings.selector,
        read_key(main),
        canonicalization=settings.canonicalization,
        oversign=settings.oversign,
        rotation=rotation,
        extra_headers=sorted(header_names),
        from_domain=project.sender.domain,
        envelope_domains=sorted({path.rsplit("@", 1)[-1] for path in return_paths}),
    )


# ------------------------------------------------------------------ preparing
def prepare(
    issue_dir: Path,
    *,
    secret_file: Path | None = None,
    test: bool = False,
    secret_required: bool = True,
    profile: str | None = None,
) -> Prepared:
    """Load, validate and render the issue once, with merge tokens for per-recipient fields.

    ``profile``: the SMTP profile the copies go through ('default' when there is
    one and none is named); its headers and return path are the messages' own.
    """
    project, issue = load(Path(issue_dir))
    chosen = choose_profile(project, profile)
    if not test and "{token}" not in project.footer.unsubscribe_url:
        # RFC 8058: the one-click POST carries nothing but the URL, so it must name the recipient
        raise ContentError(
            [
                Problem(
                    shown_path(project.root / PROJECT_FILE),
                    0,
                    0,
                    "footer.unsubscribe_url",
                    "has no {token}: one-click unsubscribe needs a URL that identifies the "
                    "recipient; a list send is refused without it",
                )
            ]
        )
    _check_return_paths(project, profile or "default", chosen)
    keys = TokenKeys.load(secret_file, required=secret_required)
    ephemeral = keys is None
    rendered = render_issue(project, issue, personal=True)
    digest = hashlib.sha256()
    for part in (issue.subject, rendered.text, rendered.html):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    messages = PersonalMessages(
        project,
        issue,
        rendered,
        keys=keys or TokenKeys.from_secrets(secrets.token_bytes(32)),
        test=test,
        subject_prefix=(project.subject_prefix or "") if test else "",
        dkim_signer=_dkim_signer(project, chosen),
        profile=chosen,
    )
    return Prepared(project, issue, messages, digest.hexdigest(), ephemeral, chosen)


def _check_return_paths(project: Project, name: str, profile: SmtpProfile | None) -> None:
    """The project's and the profile's return paths, each usable as a MAIL FROM (VERP or not)."""
    problems = []
    for keys, template in (
        (("return_path",), project.return_path),
        (("smtp", name, "return_path"), profile.return_path if profile else None),
    ):
        problem = check_return_path(template) if template else None
        if problem:
            problems.append(locate(project, keys, problem))
    if problems:
        raise ContentError(problems)


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
        for name, entry in project.lists.items():  # a configured list named by its file
            if (project.root / entry.csv).resolve() == path.resolve():
                return resolve_list(project, name)
        return path.stem, path, None
    known = ", ".join(project.lists) or "none"
    raise UsageError(f"{name_or_csv!r} is neither a list in dispatch.yaml ({known}) nor a CSV file")


def open_send(
    prepared: Prepared,
    list_name: str,
    *,
    settings: SmtpSettings | None = None,
    options: SendOptions | None = None,
    journal_path: Path | None = None,
    suppression: Path | None = None,
    store: SuppressionStore | None = None,
    force: bool = False,
    uncertain: str = "resend",
    retry_deferred: bool = False,
    lease_stale_after: float = DEFAULT_STALE_AFTER,
) -> tuple[Journal, SendPlan]:
    """Hold the journal, bind it to this issue, read the list (streamed), recover, plan.

    The journal's lease is taken first: while another send holds it this one is
    refused (JournalBusy) before it reads or changes anything, so it never mistakes
    the other's messages in flight for a crash's. ``lease_stale_after``: seconds
    without a heartbeat after which a lease held from another host is taken over.
    The plan is made once, here, from the journal as it now is and the relay it will use.
    Whoever the suppression ``store`` bars from the list is excluded, with the reason.
    Deferred recipients that are due (all of them, with ``retry_deferred``) are tried again.
    """
    project, issue = prepared.project, prepared.issue
    label, csv_path, list_suppression = resolve_list(project, list_name)
    prepared.messages.list_name = label
    path = journal_path or default_journal_path(project, issue.slug, label)
    journal = Journal.open(path)
    try:
        journal.check_binding(issue.slug, prepared.content_hash, force=force)  # refused: unchanged
        journal.take_lease(lease_stale_after)
        new = journal.bind(issue.slug, prepared.content_hash, force=force)
        from_file = read_suppressed(suppression or list_suppression)
        suppressed = suppressed_reasons(store, label, from_file) if store else from_file
        domain = project.sender.domain
        synced = journal.sync(scan_audience(csv_path, suppressed), domain, issue.slug)
        released, deferred_left = journal.release_deferred(now=retry_deferred)
        recovered = journal.recover(resend=uncertain == "resend")
        if uncertain == "resend":
            journal.release_held()
        exclusions = journal.exclusions()
        plan = SendPlan(
            list_label=f"{label} ({shown_path(csv_path)})",
            journal_path=path,
            relay=settings.describe() if settings else "",
            concurrency=options.concurrency if options else 0,
            rate=options.rate if options else None,
            counts=frozen_counts(journal.counts()),
            excluded_total=len(exclusions),
            exclusion_tally=frozen_counts(tally_exclusions(exclusions)),
            recovered=len(recovered),
            recover_policy=uncertain,
            new_send=new,
            removed_from_list=synced.removed,
            deferred_released=released,
            deferred_next=journal.next_deferred_at() if deferred_left else None,
        )
    except BaseException:
        journal.close()  # and the lease with it
        raise
    return journal, plan


async def run_send(
    journal: Journal,
    prepared: Prepared,
    settings: SmtpSettings,
    options: SendOptions,
    progress: Callable[[SendSummary, dict[str, int]], None] | None = None,
    store: SuppressionStore | None = None,
) -> SendSummary:
    screen = BatchScreen(store, prepared.messages.list_name, journal) if store else None
    engine = SendEngine(journal, prepared.messages, settings, options, progress, screen)
    return await engine.run()


# ------------------------------------------------------------------ test sends
def test_recipients(
    project: Project, to: list[str], reviewers: bool, as_recipient: str | None = None
) -> list[Recipient]:
    """The test copies' recipients, each with their own name; with ``as_recipient``, each
    gets that list member's copy instead (delivery/testcopies.py)."""
    if reviewers and not project.reviewers:
        raise UsageError("no reviewers: in dispatch.yaml", hint="reviewers")
    candidates = [
        Recipient(r.email, {"email": r.email, **({"name": r.name} if r.name else {})})
        for r in (project.reviewers if reviewers else [])
    ] + [test_address(text) for text in to]
    out: list[Recipient] = []
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.email.casefold() not in seen:
            seen.add(candidate.email.casefold())
            out.append(candidate)
    if not out:
        raise UsageError("nobody to send to", hint="recipients")
    return as_member(out, find_member(project, as_recipient)) if as_recipient else out


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
            summary = await SendEngine(journal, prepared.messages, settings, options).run()
            failures = [(r.email, r.last_reply or "") for r in journal.rows("failed")]
            failures += [(r.email, r.last_reply or "not sent") for r in journal.rows("pending")]
        finally:
            journal.close()
    return summary, failures


# ------------------------------------------------------------------ dry run
def dry_run(
    prepared: Prepared,
    recipients: list[Recipient] | None,
    list_name: str | None,
    out: Path,
    store: SuppressionStore | None = None,
) -> tuple[int, list[Exclusion]]:
    """Write every message as it would be sent, to a folder of .eml files or an mbox.

    Nothing connects anywhere: this is what a reviewer reads before the real send.
    """
    excluded: list[Exclusion] = []
    if recipients is None:
        assert list_name is not None
        label, csv_path, suppression = resolve_list(prepared.project, list_name)
        prepared.messages.list_name = label
        from_file = read_suppressed(suppression)
        suppressed = suppressed_reasons(store, label, from_file) if store else from_file
        items = scan_audience(csv_path, suppressed)
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
            message_id = make_message_id(prepared.issue.slug, "dry", count, domain)
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
