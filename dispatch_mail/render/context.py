"""What the templates get besides the manifest: derived values the owner should not type twice."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from dispatch_mail.project.issue import (
    FeaturedSection,
    Issue,
    ReadingListSection,
    RoundupSection,
    StoriesSection,
)
from dispatch_mail.project.settings import Project
from dispatch_mail.project.urls import add_utm
from dispatch_mail.render.strings import (
    Strings,
    arrow,
    format_issue_date,
    quote_slant,
    text_direction,
)

# Per-recipient values are rendered as placeholders and substituted afterwards,
# so an issue is rendered once, not once per recipient.
MERGE_FIELDS = ("unsubscribe_url", "greeting", "email")


def merge_tokens(project: Project, issue: Issue) -> dict[str, str]:
    """The placeholder of each merge field in one personal render of this content.

    Each ends in a nonce, a digest of everything the render shows, so no text of a
    manifest, of dispatch.yaml or of a fetched page can hold it (it would have to hold
    its own digest): a recipient's values land only where the templates put them. The
    same content gets the same nonce, so a resumed send finds the content it started
    with. Letters and digits only: they survive HTML escaping, URL quoting and
    quoted-printable unchanged.
    """
    located = dataclasses.replace(project, root=Path(".")), dataclasses.replace(issue, path="")
    nonce = hashlib.sha256(repr(located).encode("utf-8")).hexdigest()[:24].upper()
    return {name: f"XDISPATCHMERGE{name.replace('_', '').upper()}{nonce}X" for name in MERGE_FIELDS}


@dataclass(frozen=True)
class Linker:
    """Adds the issue's UTM parameters to outbound links."""

    params: dict[str, str] = field(default_factory=dict)

    def __call__(self, url: str) -> str:
        return add_utm(url, self.params)


def utm_params(project: Project, issue: Issue) -> dict[str, str]:
    """The project's UTM defaults, overridden key by key by the issue's."""
    merged = {
        "source": project.utm.source,
        "medium": project.utm.medium,
        "campaign": project.utm.campaign,
    }
    enabled = project.utm.enabled
    if issue.utm is not None:
        enabled = issue.utm.enabled
        for key in merged:
            value = getattr(issue.utm, key)
            if value is not None:
                merged[key] = value
    if not enabled:
        return {}
    return {f"utm_{k}": v.replace("{slug}", issue.slug) for k, v in merged.items() if v}


def stats_line(issue: Issue, strings: Strings) -> list[str]:
    """The masthead's stats, e.g. ['5 stories', 'Reading list', 'APAC roundup'], in its language."""
    if issue.masthead.stats is not None:
        return list(issue.masthead.stats)
    parts: list[str] = []
    owned = 0
    owned_at: int | None = None
    for section in issue.sections:
        if isinstance(section, (FeaturedSection, StoriesSection)) and section.stat is None:
            owned += 1 if isinstance(section, FeaturedSection) else len(section.items)
            if owned_at is None:
                owned_at = len(parts)
                parts.append("")
        elif section.stat is not None:
            parts.append(section.stat)
        elif isinstance(section, ReadingListSection):
            parts.append(strings("reading_list"))
        elif isinstance(section, RoundupSection):
            parts.append(strings("roundup", region=section.region))
    if owned_at is not None:
        parts[owned_at] = strings("stories", count=owned)
    return parts


def slugify(text: str) -> str:
    """An ASCII name for an anchor or a List-Id: 'APAC Roundup' → 'apac-roundup'.

    Latin text loses its accents ('Café' → 'cafe'); text that folding would empty or
    cut ('今週のニュース', 'أخبار') keeps its letters, as an IDNA label ('xn--…'), so two
    non-Latin headings never both become 'section'.
    """
    folded = unicodedata.normalize("NFKD", text)
    letters = "".join(ch for ch in folded if not unicodedata.combining(ch))
    ascii_text = letters.encode("ascii", "ignore").decode()
    if len(re.sub(r"\W", "", ascii_text)) == len(re.sub(r"\W", "", letters)):
        return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "section"
    words = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFKC", text).lower()).strip("-")
    encoded = "xn--" + words.encode("punycode").decode("ascii").lower()
    return re.sub(r"[^a-z0-9-]+", "-", encoded)[:60].strip("-")


def section_anchors(issue: Issue) -> list[str]:
    """A unique HTML id per section, from its `id` or its heading."""
    seen: set[str] = set()
    anchors: list[str] = []
    for i, section in enumerate(issue.sections):
        base = slugify(section.id or section.heading or f"section-{i + 1}")
        anchor, n = base, 2
        while anchor in seen:
            anchor, n = f"{base}-{n}", n + 1
        seen.add(anchor)
        anchors.append(anchor)
    return anchors


def web_unsubscribe_url(project: Project) -> str:
    """The unsubscribe link of the web version and of built files: no personal token."""
    return project.footer.preferences_url or project.footer.unsubscribe_url.replace("{token}", "")


class TemplateContext(TypedDict):
    """Everything the email templates see besides their filters."""

    project: Project
    issue: Issue
    lang: str
    dir: str
    start: str  # the side a line starts on: "left", or "right" in right-to-left text
    end: str
    arrow: str
    slant: str  # quotations' font-style: upright in scripts with no italic
    t: Strings
    date_line: str
    stats: list[str]
    anchors: list[str]
    web_url: str | None
    merge: dict[str, str]
    linker: Linker


def template_context(project: Project, issue: Issue, personal: bool) -> TemplateContext:
    """Everything the templates see. ``personal`` renders merge tokens for later substitution."""
    lang = issue.lang or project.lang
    direction = issue.dir or text_direction(lang)
    strings = Strings(lang, project.strings)
    if personal:
        merge = merge_tokens(project, issue)
    else:
        merge = {
            "unsubscribe_url": web_unsubscribe_url(project),
            "greeting": greeting_for(issue, "", strings),
            "email": "",
        }
    return {
        "project": project,
        "issue": issue,
        "lang": lang,
        "dir": direction,
        "start": "right" if direction == "rtl" else "left",
        "end": "left" if direction == "rtl" else "right",
        "arrow": arrow(direction),
        "slant": quote_slant(lang),
        "t": strings,
        "date_line": format_issue_date(issue.date, lang, project.date_format),
        "stats": stats_line(issue, strings),
        "anchors": section_anchors(issue),
        "web_url": project.web_url(issue.slug),
        "merge": merge,
        "linker": Linker(utm_params(project, issue)),
    }


def greeting_for(issue: Issue, name: str, strings: Strings | None = None) -> str:
    """The greeting line of one recipient (the web version has no name: the fallback)."""
    if issue.greeting is None:
        return ""
    if "{name}" not in issue.greeting:
        return issue.greeting
    name = " ".join(name.split())
    if name:
        return issue.greeting.replace("{name}", name)
    if issue.greeting_fallback is not None:
        return issue.greeting_fallback
    return (strings or Strings(issue.lang or "en"))("greeting_fallback")
