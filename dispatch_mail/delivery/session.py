"""A real send to a list, as one object: open (the plan), run (the outcome), close.

The CLI shows the plan, asks, and prints the outcome; everything in between — the
journal, recovery, the engine, what to tell the user afterwards and which exit code
that means — is decided here, so a Python caller gets the same behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from dispatch_mail.delivery.campaign import Prepared, open_send, run_send
from dispatch_mail.delivery.engine import SendOptions, SendSummary
from dispatch_mail.delivery.journal import DEFAULT_STALE_AFTER, Journal
from dispatch_mail.delivery.plan import SendPlan, frozen_counts
from dispatch_mail.delivery.smtp import SmtpSettings
from dispatch_mail.errors import ContentError, DispatchError
from dispatch_mail.project.placeholders import placeholder_problems
from dispatch_mail.project.wording import plural
from dispatch_mail.suppression import open_store

Progress = Callable[[SendSummary, dict[str, int]], None]

NOTHING_TO_SEND = (
    "nothing to send: every recipient was already reached or has failed (see dispatch status)"
)


@dataclass(frozen=True)
class SendOutcome:
    """How a run ended: the summary line, the notes, and what the exit code must be.

    ``resume_command`` is set when there is something left to resume.
    """

    exit_code: int
    counts: Mapping[str, int]
    summary: SendSummary | None = None
    report: str | None = None  # the one line for standard output
    error: str | None = None  # a send that stopped on an error
    notes: tuple[str, ...] = ()  # lines for standard error, in order
    resume_command: str | None = None


DEFERRED_EXIT = 75  # sysexits.h EX_TEMPFAIL: nothing failed, some are to be tried again later


def exit_code_for(counts: Mapping[str, int]) -> int:
    """1 when someone failed permanently, 75 when some are deferred, else 0 (docs/sending.md)."""
    if counts.get("failed"):
        return 1
    return DEFERRED_EXIT if counts.get("deferred") else 0


def refuse_placeholders(prepared: Prepared) -> None:
    """A list send does not start while a link still points at a placeholder to fill in."""
    if not prepared.issue.path:
        return
    problems = placeholder_problems(Path(prepared.issue.path))
    if problems:
        raise ContentError(
            [replace(p, message=f"{p.message} (a send to a list refuses it)") for p in problems]
        )


def due_time(when: float) -> str:
    """A deferred recipient's due time as the person sending reads it: UTC, to the minute."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")


class ListSend:
    """One send of a prepared issue to one list, journaled and resumable.

    From opening to close() it holds the journal's lease: another send of the same
    journal is refused meanwhile (JournalBusy), the plan's confirmation included.
    """

    def __init__(
        self,
        prepared: Prepared,
        list_name: str,
        settings: SmtpSettings,
        options: SendOptions,
        *,
        journal_path: Path | None = None,
        force: bool = False,
        uncertain: str = "resend",
        retry_deferred: bool = False,
        database_url: str | None = None,
        resume_command: str | None = None,
        lease_stale_after: float = DEFAULT_STALE_AFTER,
    ):
        self.prepared, self.settings, self.options = prepared, settings, options
        self.resume_command = resume_command
        self.journal: Journal
        self.plan: SendPlan
        refuse_placeholders(prepared)
        # the store first: a send that cannot check who left the list does not start
        self.store = open_store(prepared.project, url=database_url)
        try:
            self.journal, self.plan = open_send(
                prepared,
                list_name,
                settings=settings,
                options=options,
                journal_path=journal_path,
                store=self.store,
                force=force,
                uncertain=uncertain,
                retry_deferred=retry_deferred,
                lease_stale_after=lease_stale_after,
            )
        except BaseException:
            self.store.close()
            raise

    def __enter__(self) -> ListSend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            self.store.close()

    def nothing_to_send(self) -> SendOutcome:
        counts = frozen_counts(self.journal.counts())
        if counts.get("deferred") and self.plan.deferred_next is not None:
            report = (
                f"nothing due now: {counts['deferred']:,} deferred, the next due at "
                f"{due_time(self.plan.deferred_next)}"
            )
            return SendOutcome(exit_code_for(counts), counts, report=report)
        return SendOutcome(exit_code_for(counts), counts, report=NOTHING_TO_SEND)

    def run(self, progress: Progress | None = None) -> SendOutcome:
        """Send to everyone the plan counts as due; never raises for a send that stopped."""
        try:
            summary = asyncio.run(
                run_send(
                    self.journal, self.prepared, self.settings, self.options, progress, self.store
                )
            )
        except DispatchError as exc:
            # the error first, then how to go on: the last line is the one to copy
            return SendOutcome(
                exc.exit_code,
                frozen_counts(self.journal.counts()),
                error=str(exc),
                resume_command=self.resume_command,
            )
        except KeyboardInterrupt:  # a second Ctrl-C: the journal knows who was in flight
            return SendOutcome(
                130,
                frozen_counts(self.journal.counts()),
                notes=(
                    "interrupted at once; the messages that were in flight are settled "
                    "when you resume",
                ),
                resume_command=self.resume_command,
            )
        return self._finished(summary)

    def _finished(self, summary: SendSummary) -> SendOutcome:
        counts = frozen_counts(self.journal.counts())
        report = (
            f"sent {summary.sent:,}, failed {summary.failed:,}, "
            + (f"deferred {counts['deferred']:,}, " if counts.get("deferred") else "")
            + f"still pending {counts['pending']:,}, "
            f"in {summary.duration:.1f}s ({summary.rate:.0f}/s); "
            f"{counts['sent']:,} of {sum(counts.values()):,} reached in all"
        )
        notes: list[str] = []
        if summary.possibly_duplicated:
            notes.append(
                f"note: {plural(summary.possibly_duplicated, 'message')} "
                f"{'was' if summary.possibly_duplicated == 1 else 'were'} retried after the "
                "connection dropped during DATA; the server may have accepted the first copy "
                "(RFC 1047)"
            )
        if summary.interrupted:
            notes.append(
                "interrupted: the messages in flight were finished; the rest were not sent"
            )
        if summary.stopped_reason:
            notes.append(f"stopped: {summary.stopped_reason}")
        if summary.withdrawn:
            notes.append(
                f"{summary.withdrawn:,} unsubscribed or bounced while the send ran: not sent"
            )
        due = self.journal.next_deferred_at() if counts.get("deferred") else None
        if due is not None:
            notes.append(
                f"deferred: {counts['deferred']:,} refused for now (4xx); the next is due at "
                f"{due_time(due)}; run the same command again then"
            )
        unfinished = (
            summary.interrupted
            or bool(summary.stopped_reason)
            or counts["pending"] > 0
            or counts.get("deferred", 0) > 0
        )
        return SendOutcome(
            130 if summary.interrupted else exit_code_for(counts),
            counts,
            summary=summary,
            report=report,
            notes=tuple(notes),
            resume_command=self.resume_command if unfinished else None,
        )
