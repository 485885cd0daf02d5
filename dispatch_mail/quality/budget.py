"""The inbox budget: HTML size against Gmail's clipping, and the preview line.

`dispatch build` warns about these and `dispatch check` reports them; both ask
here, so the thresholds and conditions live in one place. The build's summary
words them shorter than the check's findings do.

Gmail clips at about 102 KB of the HTML part as it arrives, transfer encoding
included, so the size that counts is the quoted-printable part (every "=" in the
markup becomes "=3D", every line gains a soft break), measured with the encoder
that writes the built .eml; the raw HTML is reported beside it.
"""

from __future__ import annotations

from email.message import EmailMessage

from dispatch_mail.mail.eml import POLICY
from dispatch_mail.project.issue import Issue
from dispatch_mail.quality.findings import Finding
from dispatch_mail.render import Rendered

GMAIL_CLIP_BYTES = 102 * 1024
# the budget FINDINGS.md gives: a sent copy's own merge values and unsubscribe link add a
# little to what the build measures, so stay 2 KB under the clip
SIZE_WARNING_BYTES = 100 * 1024
# judging the raw HTML alone: quoted-printable adds about 9% to a theme-built issue
RAW_WARNING_BYTES = 90 * 1024
_CLIP_KB = GMAIL_CLIP_BYTES // 1024


def sent_html_bytes(html: str) -> int:
    """The HTML part's body as sent: quoted-printable with CRLF lines, as mail/eml.py writes it."""
    part = EmailMessage(policy=POLICY)
    part.set_content(html, subtype="html", charset="utf-8", cte="quoted-printable")
    body = part.get_payload()
    assert isinstance(body, str)
    return len(body.replace("\n", "\r\n").encode("ascii"))


_ENCODED = bytes([*range(0, 9), 11, 12, *range(14, 32), 61, *range(127, 256)])  # = and 8-bit


def surely_under_budget(data: bytes) -> bool:
    """True when the part as sent cannot pass the budget: then it need not be encoded.

    An upper bound of quoted-printable: each byte it escapes takes 3, a soft line break
    (=CRLF) comes at least every 73 characters, and every LF becomes CRLF. Encoding the
    HTML costs about 10 ms a build; counting bytes, well under one.
    """
    escaped = len(data) - len(data.translate(None, _ENCODED))
    escaped += data.count(b" \n") + data.count(b"\t\n")
    encoded = len(data) + 2 * escaped
    bound = encoded + 3 * (encoded // 73 + 1) + data.count(b"\n")
    return bound <= SIZE_WARNING_BYTES


def _sizes(raw: int, sent: int | None) -> str:
    if sent is None:
        return f"HTML {raw / 1024:.1f} KB"
    return f"HTML {raw / 1024:.1f} KB, {sent / 1024:.1f} KB as sent (quoted-printable)"


def size_finding(html: str | int) -> Finding | None:
    """An error past Gmail's clipping threshold, a warning past the budget, else None.

    Given the HTML, it measures the part as sent. A bare byte count (the raw HTML's, as
    `dispatch check` passed it before) is judged as it stands, with the older 90 KB warning.
    """
    if isinstance(html, int):
        return _size_finding(html, None)
    data = html.encode("utf-8")
    if surely_under_budget(data):
        return None
    return _size_finding(len(data), sent_html_bytes(html))


def _size_finding(raw: int, sent: int | None) -> Finding | None:
    counted, budget = (raw, RAW_WARNING_BYTES) if sent is None else (sent, SIZE_WARNING_BYTES)
    if counted > GMAIL_CLIP_BYTES:
        return Finding(
            "error",
            "size.gmail-clip",
            f"{_sizes(raw, sent)}; Gmail clips past {_CLIP_KB} KB and hides the rest, "
            "the unsubscribe link included",
        )
    if counted > budget:
        return Finding(
            "warning",
            "size.near-clip",
            f"{_sizes(raw, sent)}: over the {budget // 1024} KB budget, close to Gmail's "
            f"{_CLIP_KB} KB clipping threshold",
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
    data = rendered.html.encode("utf-8")
    warnings = []
    raw, sent = len(data), None
    if not surely_under_budget(data):
        sent = sent_html_bytes(rendered.html)
    finding = _size_finding(raw, sent) if sent is not None else None
    if finding is not None:
        where = "past" if finding.level == "error" else "near"
        warnings.append(
            f"{_sizes(raw, sent)}; {where} Gmail's {_CLIP_KB} KB clip, which hides the rest "
            "and the unsubscribe link"
        )
    if missing_preheader_finding(issue.preheader) is not None:
        warnings.append("no preheader: inboxes will show the first words of the email instead")
    return warnings
