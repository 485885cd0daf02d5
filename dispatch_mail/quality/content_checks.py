"""The checks of what the reader gets besides the HTML: subject, preview line, plaintext, footer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from dispatch_mail.project.issue import (
    AnnouncementsSection,
    EventsSection,
    FeaturedSection,
    Issue,
    LinksSection,
    ReadingListSection,
    RoundupSection,
    StoriesSection,
)
from dispatch_mail.project.markup import Inline
from dispatch_mail.quality.budget import missing_preheader_finding
from dispatch_mail.quality.facts import Context
from dispatch_mail.quality.findings import Finding
from dispatch_mail.render.strings import Strings

SUBJECT_MAX = 60
PREHEADER_RANGE = (30, 140)


def check_subject_and_preheader(ctx: Context) -> list[Finding]:
    out = []
    subject = ctx.issue.subject
    if len(subject) > SUBJECT_MAX:
        out.append(
            Finding(
                "warning",
                "subject.length",
                f"subject is {len(subject)} characters; inboxes cut it at about {SUBJECT_MAX}",
            )
        )
    missing = missing_preheader_finding(ctx.issue.preheader)
    if missing is not None:
        return [*out, missing]
    return out + _preheader_findings(ctx.issue.preheader or "", subject)


def _preheader_findings(pre: str, subject: str) -> list[Finding]:
    """A preheader that fills the inbox's preview line, and does not waste it on the subject."""
    out = []
    lo, hi = PREHEADER_RANGE
    if len(pre) < lo:
        out.append(
            Finding(
                "warning",
                "preheader.short",
                f"preheader is {len(pre)} characters; {lo}–{hi} fill the preview line",
            )
        )
    elif len(pre) > hi:
        out.append(
            Finding(
                "note",
                "preheader.long",
                f"preheader is {len(pre)} characters; inboxes show about {hi}",
            )
        )
    if pre.strip().lower() == subject.strip().lower():
        out.append(
            Finding(
                "warning",
                "preheader.repeats-subject",
                "preheader repeats the subject: the preview line is wasted",
            )
        )
    return out


class _Titled(Protocol):
    @property
    def title(self) -> Inline: ...


def _titles(prefix: str, items: Sequence[_Titled]) -> list[tuple[str, str]]:
    return [(f"{prefix}[{j}].title", it.title.plain) for j, it in enumerate(items)]


def item_titles(issue: Issue) -> list[tuple[str, str]]:
    """(where, words) of every item that the plaintext must carry."""
    items: list[tuple[str, str]] = []
    for i, s in enumerate(issue.sections):
        base = f"sections[{i}]"
        if s.heading:
            items.append((f"{base}.heading", s.heading))
        if isinstance(s, FeaturedSection):
            items.append((f"{base}.title", s.title.plain))
        elif isinstance(s, StoriesSection | ReadingListSection | RoundupSection):
            items += _titles(f"{base}.items", s.items)
            for g, group in enumerate(s.groups if isinstance(s, RoundupSection) else []):
                items += _titles(f"{base}.groups[{g}].items", group.items)
        elif isinstance(s, AnnouncementsSection):
            items += [(f"{base}.items[{j}]", it.plain) for j, it in enumerate(s.items)]
        elif isinstance(s, LinksSection):
            items += [
                (f"{base}.items[{j}]", (it.title or it.text).plain) for j, it in enumerate(s.items)
            ]
            for g, link_group in enumerate(s.groups):
                items.append((f"{base}.groups[{g}].heading", link_group.heading))
                items += [
                    (f"{base}.groups[{g}].items[{j}].title", it.title.plain)
                    for j, it in enumerate(link_group.items)
                ]
        elif isinstance(s, EventsSection):
            items += [(f"{base}.items[{j}].title", it.title.plain) for j, it in enumerate(s.items)]
    return items


_REFERENCE = re.compile(r" ?\[\d{1,4}\]|[\u2066-\u2069]")  # reference markers, bidi isolates


def _comparable(text: str) -> str:
    """Words only: plaintext marks emphasis with * and _, and links with [n]; the model does not."""
    return " ".join(_REFERENCE.sub("", text).replace("*", "").replace("_", "").split())


def check_plaintext(ctx: Context) -> list[Finding]:
    text = _comparable(ctx.rendered.text)
    if len(text) < 50:
        return [Finding("error", "text.missing", "the plaintext part is empty or nearly so")]
    out = []
    for where, words in item_titles(ctx.issue):
        probe = _comparable(words)[:60]
        if probe and probe not in text and probe.upper() not in text:
            out.append(
                Finding("error", "text.item-missing", f"the plaintext part lacks {probe!r}", where)
            )
    return out


def _unsubscribe_words(ctx: Context) -> tuple[str, ...]:
    """'unsubscribe', and the theme's word for it in the issue's language (or the owner's)."""
    lang = ctx.issue.lang or ctx.project.lang
    return ("unsubscribe", Strings(lang, ctx.project.strings)("unsubscribe").lower())


def check_footer(ctx: Context) -> list[Finding]:
    out = []
    footer = ctx.project.footer
    address = " ".join(footer.postal_address.split())
    if address not in " ".join(" ".join(ctx.facts.text_parts).split()):
        out.append(
            Finding(
                "error",
                "footer.postal-address",
                "the postal address is not in the HTML (CAN-SPAM requires it)",
            )
        )
    if address not in " ".join(ctx.rendered.text.split()):
        out.append(
            Finding(
                "error",
                "footer.postal-address-text",
                "the postal address is not in the plaintext part",
            )
        )
    words = _unsubscribe_words(ctx)
    if not any(
        any(w in (link.visible_text + link.aria_label).lower() for w in words)
        for link in ctx.facts.links
    ):
        out.append(
            Finding(
                "error",
                "footer.unsubscribe",
                "no visible unsubscribe link "
                "(Gmail and Yahoo require one in bulk mail, besides the header)",
            )
        )
    if not any(w in ctx.rendered.text.lower() for w in words):
        out.append(
            Finding("error", "footer.unsubscribe-text", "no unsubscribe link in the plaintext part")
        )
    if "{token}" not in footer.unsubscribe_url:
        out.append(
            Finding(
                "error",
                "footer.one-click",
                "footer.unsubscribe_url has no {token}: one-click unsubscribe (RFC 8058) "
                "needs a URL that identifies the recipient",
            )
        )
    elif not footer.unsubscribe_url.startswith("https://"):
        out.append(
            Finding("error", "footer.one-click-https", "one-click unsubscribe needs an https URL")
        )
    return out
