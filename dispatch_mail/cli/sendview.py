"""How a send looks on the terminal: the plan before confirming, relay retries, the progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from dispatch_mail.cli.output import echo

if TYPE_CHECKING:
    from dispatch_mail.delivery.connections import RelayRetry
    from dispatch_mail.delivery.engine import SendSummary
    from dispatch_mail.delivery.plan import SendPlan


def describe_plan(plan: SendPlan) -> str:
    """The plan as the person sending reads it before confirming."""
    from dispatch_mail.project.paths import shown_path

    c = plan.counts
    lines = [
        f"Send plan for {plan.list_label}",
        f"  recipients:   {plan.total:,} in the journal {shown_path(plan.journal_path)}",
        f"  to send now:  {plan.to_send:,}",
    ]
    if not plan.new_send:
        lines.append(
            f"  resuming:     {c.get('sent', 0):,} already sent (never sent again), "
            f"{c.get('failed', 0):,} failed"
        )
    if c.get("held"):
        lines.append(
            f"  held:         {c['held']:,} interrupted in flight, held for review "
            "(--uncertain resend sends them)"
        )
    if plan.recovered:
        what = "will be sent again" if plan.recover_policy == "resend" else "are held for review"
        lines.append(
            f"  in flight:    {plan.recovered:,} were in flight when the last run stopped; "
            f"the server may have them; they {what}"
        )
    if plan.deferred_released:
        lines.append(
            f"  deferred:     {plan.deferred_released:,} refused for now last time (4xx), "
            "due again: tried now with their Message-IDs"
        )
    if c.get("deferred") and plan.deferred_next is not None:
        from dispatch_mail.delivery.session import due_time

        lines.append(
            f"  waiting:      {c['deferred']:,} deferred, the next due at "
            f"{due_time(plan.deferred_next)} (--retry-deferred tries them now)"
        )
    if plan.removed_from_list:
        lines.append(
            f"  removed:      {plan.removed_from_list:,} removed from the list since the send "
            "began; not sent"
        )
    if plan.excluded_total:
        detail = ", ".join(f"{n:,} {k}" for k, n in sorted(plan.exclusion_tally.items()))
        lines.append(
            f"  excluded:     {plan.excluded_total:,} ({detail}); see `dispatch status --excluded`"
        )
    rate = f"{plan.rate:g}/s" if plan.rate else "as fast as the relay accepts"
    connections = f"{plan.concurrency} connection{'s' if plan.concurrency != 1 else ''}"
    lines += [
        f"  relay:        {plan.relay}, {connections}, {rate}",
        f"  estimated:    {duration(plan.estimated_seconds)}",
    ]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    whole = int(round(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def relay_notice(*, after_bar: bool) -> Callable[[RelayRetry], None]:
    """Each retry to reach the relay as a line on stderr, below the progress bar if one is shown."""

    def show(retry: RelayRetry) -> None:
        echo(("\n" if after_bar else "") + str(retry), err=True, fg="yellow")

    return show


def progress_bar(total: int) -> Callable[[SendSummary, dict[str, int]], None]:
    start = time.monotonic()

    def show(summary: SendSummary, counts: dict[str, int]) -> None:
        done = summary.sent + summary.failed
        elapsed = max(time.monotonic() - start, 1e-6)
        rate = summary.sent / elapsed
        left = (total - done) / rate if rate > 0 else 0
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        click.echo(
            f"\r[{bar}] {done:,}/{total:,} {rate:,.0f}/s "
            f"{int(left) // 60}m{int(left) % 60:02d}s left ",
            nl=False,
            err=True,
        )

    return show
