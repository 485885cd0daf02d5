"""The inbox budget: HTML size against Gmail's clipping, and the preview line.

`dispatch build` warns about these and `dispatch check` reports them; both ask
here, so the thresholds and conditions live in one place. The build's summary
words them shorter than the check's findings do.
"""

from __future__ import annotations

from dispatch_mail.project.issue import Issue
from dispatch_mail.quality.findings import Finding
from dispatch_mail.render import Rendered

GMAIL_CLIP_BYTES = 102 * 1024
SIZE_WARNING_BYTES = 90 * 1024
_CLIP_KB = GMAIL_CLIP_BYTES // 1024


def size_finding(html_bytes: int) -> Finding | None:
    """An error past Gmail's clipping threshold, a warning near it, else None."""
    size = f"HTML is {html_bytes / 1024:.1f} KB"
    if html_bytes > GMAIL_CLIP_BYTES:
        return Finding(
            "error",
            "size.gmail-clip",
            f"{size}; Gmail clips past {_CLIP_KB} KB and hides the rest, "
            "the unsubscribe link included",
        )
    if html_bytes > SIZE_WARNING_BYTES:
        return Finding(
            "warning",
            "size.near-clip",
            f"{size}, close to Gmail's {_CLIP_KB} KB clipping threshold",
        )
    return None


def missing_preheader_finding(preheader: str | None) -> Finding | None:
    """A warning when the issue has no preheader: the inbox fills the preview line itself."""
    if preheader is not None:
        return None
    return Finding(
        "warning",
        "preheader.missing",
        "no preheader: inboxes show the first words of the email "
        "(often 'View this issue in your browser')",
    )


def build_warnings(issue: Issue, rendered: Rendered) -> list[str]:
    """The budget findings of a built issue, in the words of `dispatch build`'s summary."""
    html_bytes = len(rendered.html.encode("utf-8"))
    warnings = []
    if size_finding(html_bytes) is not None:
        warnings.append(
            f"HTML is {html_bytes / 1024:.1f} KB; Gmail clips messages past about "
            f"{_CLIP_KB} KB, hiding the rest and the unsubscribe link"
        )
    if missing_preheader_finding(issue.preheader) is not None:
        warnings.append("no preheader: inboxes will show the first words of the email instead")
    return warnings
