"""The typed model of an issue manifest (``issues/<slug>/issue.yaml``).

Each field carries its documentation in ``metadata["doc"]``: the loader
validates against these classes and ``docs/manifest.md`` is generated from
them, so the reference cannot drift from the code.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, get_args

from dispatch_mail.project.markup import Inline, Markdown


# ----------------------------------------------------------------- scalar kinds
class Text(str):
    """Plain text on one line: no Markdown, no line breaks."""


class LongText(str):
    """Plain text that may span lines (line breaks are kept)."""


class HeaderText(str):
    """Text that ends up in a mail header: one line, no CR or LF."""


class Url(str):
    """An absolute http(s) or mailto URL."""


class ImageUrl(str):
    """An absolute https URL of an image."""


class EmailAddress(str):
    """An email address such as ``news@example.org``."""


class Color(str):
    """A hex colour, ``#rrggbb`` or ``#rgb``."""


def doc(text: str, default: Any = dataclasses.MISSING, **limits: Any) -> Any:
    """A dataclass field with its documentation and limits (max_length, min, max, example)."""
    meta = {"doc": text, **limits}
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    if isinstance(default, (list, dict)):  # each instance gets its own copy
        return field(default_factory=functools.partial(copy.copy, default), metadata=meta)
    return field(default=default, metadata=meta)


# ----------------------------------------------------------------- building blocks
@dataclass(frozen=True, kw_only=True)
class Image:
    """An image. Email clients block images by default, so the alt text must carry its meaning."""

    url: ImageUrl = doc("https URL of the image (hosted: emails carry no attachments).")
    alt: Text = doc("Alternative text read aloud and shown while images are off.", max_length=300)
    width: int = doc("Display width in CSS pixels.", 600, min=16, max=600)
    link: Url | None = doc("Where a click on the image goes.", None)


@dataclass(frozen=True, kw_only=True)
class Action:
    """A call-to-action link, shown as a button or an arrow link."""

    label: Text = doc("The link text; say where it goes (not 'click here').", max_length=120)
    url: Url = doc("Where it goes.")


@dataclass(frozen=True, kw_only=True)
class Quote:
    """A pull quote."""

    text: Inline = doc(
        "The quoted words, without quotation marks (the theme adds them).", max_length=1000
    )
    by: Text | None = doc("Who said it.", None, max_length=200)


@dataclass(frozen=True, kw_only=True)
class Masthead:
    """The top of the issue."""

    eyebrow: Text | None = doc(
        "The small line above the headline, e.g. 'DPDK Project · Q1 2026 Newsletter'.",
        None,
        max_length=160,
    )
    headline: LongText = doc("The issue's headline; a line break is kept.", max_length=200)
    dek: Inline | None = doc("The line under the headline.", None, max_length=600)
    image: Image | None = doc("A hero image under the headline.", None)
    stats: list[Text] | None = doc(
        "The stats line. Leave it out: it is derived from the sections "
        "(e.g. '5 owned stories · Ecosystem digest · APAC roundup'); `[]` shows the date alone.",
        None,
        max_items=8,
    )


# ----------------------------------------------------------------- section items
@dataclass(frozen=True, kw_only=True)
class Story:
    """A story card: one of the newsletter's own articles."""

    title: Text = doc("The article's title.", max_length=300)
    url: Url = doc("The article.")
    summary: Inline = doc("A paragraph on what the article says.", max_length=3000)
    kicker: Text | None = doc(
        "A label above the title, e.g. 'Community Spotlight' or 'User Story'.", None, max_length=80
    )
    quote: Quote | None = doc("A pull quote from the article.", None)
    link_label: Text = doc(
        "Text of the link to the article.", "Read the full story →", max_length=120
    )
    image: Image | None = doc("An image for the card.", None)


@dataclass(frozen=True, kw_only=True)
class ReadingItem:
    """A piece of third-party writing worth reading."""

    title: Text = doc("The piece's title; it links to the piece.", max_length=300)
    url: Url = doc("The piece.")
    note: Inline = doc("Why it matters to readers.", max_length=3000)
    via: Text | None = doc(
        "Attribution shown as 'Via X', e.g. 'Walletinvestor.com'.", None, max_length=120
    )


@dataclass(frozen=True, kw_only=True)
class RoundupItem:
    """One item of a regional roundup."""

    title: Text = doc("The item's title; it links to the article.", max_length=300)
    url: Url = doc("The article.")
    note: Inline | None = doc("What it is about.", None, max_length=3000)
    orgs: list[Text] = doc(
        "Organisations involved, shown as 'Huawei · Zhejiang University'.", [], max_items=12
    )


@dataclass(frozen=True, kw_only=True)
class RoundupGroup:
    """A sub-group of a roundup, e.g. 'Oracle-linked coverage'."""

    heading: Text = doc("The sub-group's heading.", max_length=160)
    items: list[RoundupItem] = doc("Its items.", min_items=1, max_items=100)


@dataclass(frozen=True, kw_only=True)
class LinkItem:
    """A paragraph with one link after it ("Read it here →")."""

    text: Inline = doc("What the link is about.", max_length=3000)
    url: Url = doc("The link.")
    title: Text | None = doc("A bold title above the text.", None, max_length=300)
    label: Text = doc("The link's text.", "Read it here →", max_length=120)


# ----------------------------------------------------------------- sections
@dataclass(frozen=True, kw_only=True)
class SectionBase:
    kind: ClassVar[str]
    heading: Text | None = doc("The section heading.", None, max_length=160)
    intro: Inline | None = doc("A paragraph under the heading.", None, max_length=3000)
    id: Text | None = doc(
        "An anchor name for links to the section (derived from the heading).", None, max_length=60
    )
    stat: Text | None = doc(
        "Its part of the masthead's stats line; overrides the derived one.", None, max_length=60
    )


@dataclass(frozen=True, kw_only=True)
class FeaturedSection(SectionBase):
    """An event or lead article in a highlighted card."""

    kind: ClassVar[str] = "featured"
    title: Text = doc("The card's title.", max_length=300)
    summary: Inline = doc("The main paragraph.", max_length=3000)
    label: Text | None = doc(
        "A label above the card, e.g. 'Featured · Event'.", None, max_length=80
    )
    meta: Text | None = doc(
        "A date/place line, e.g. 'DPDK Summit 2026 · May 12–13 · Stockholm'.", None, max_length=200
    )
    url: Url | None = doc("Where the title links to (defaults to the action's URL).", None)
    quote: Quote | None = doc("A pull quote.", None)
    body: Inline | None = doc("A paragraph after the quote.", None, max_length=3000)
    action: Action | None = doc("The call to action.", None)
    image: Image | None = doc("An image for the card.", None)


@dataclass(frozen=True, kw_only=True)
class StoriesSection(SectionBase):
    """Story cards for the newsletter's own articles."""

    kind: ClassVar[str] = "stories"
    items: list[Story] = doc("The stories.", min_items=1, max_items=50)


@dataclass(frozen=True, kw_only=True)
class ReadingListSection(SectionBase):
    """A reading list of third-party pieces."""

    kind: ClassVar[str] = "reading_list"
    items: list[ReadingItem] = doc("The pieces.", min_items=1, max_items=100)


@dataclass(frozen=True, kw_only=True)
class RoundupSection(SectionBase):
    """A regional roundup, optionally with sub-groups."""

    kind: ClassVar[str] = "roundup"
    region: Text = doc(
        "The region, e.g. 'APAC'; the stats line says '<region> roundup'.", max_length=60
    )
    language_note: Text | None = doc(
        "A note on the links' language, e.g. 'Mandarin language article links'.",
        None,
        max_length=120,
    )
    items: list[RoundupItem] = doc("The items.", [], max_items=100)
    groups: list[RoundupGroup] = doc("Sub-groups after the items.", [], max_items=20)


@dataclass(frozen=True, kw_only=True)
class AnnouncementsSection(SectionBase):
    """Short announcements as bullets."""

    kind: ClassVar[str] = "announcements"
    items: list[Inline] = doc(
        "The announcements, one bullet each.", min_items=1, max_items=50, max_length=1000
    )


@dataclass(frozen=True, kw_only=True)
class LinksSection(SectionBase):
    """Paragraphs each followed by a link."""

    kind: ClassVar[str] = "links"
    items: list[LinkItem] = doc("The items.", min_items=1, max_items=100)


@dataclass(frozen=True, kw_only=True)
class CallToActionSection(SectionBase):
    """A closing call to action with a button."""

    kind: ClassVar[str] = "cta"
    text: Inline = doc("The paragraph.", max_length=3000)
    button: Action | None = doc("The button.", None)


@dataclass(frozen=True, kw_only=True)
class MarkdownSection(SectionBase):
    """Free Markdown: paragraphs, lists, headings, quotes."""

    kind: ClassVar[str] = "markdown"
    body: Markdown = doc("The Markdown text.", max_length=20000)


Section = (
    FeaturedSection
    | StoriesSection
    | ReadingListSection
    | RoundupSection
    | AnnouncementsSection
    | LinksSection
    | CallToActionSection
    | MarkdownSection
)
SECTION_KINDS: dict[str, type[SectionBase]] = {cls.kind: cls for cls in get_args(Section)}


@dataclass(frozen=True, kw_only=True)
class Utm:
    """UTM parameters added to outbound http(s) links."""

    source: Text | None = doc("utm_source.", None, max_length=100)
    medium: Text | None = doc("utm_medium.", None, max_length=100)
    campaign: Text | None = doc(
        "utm_campaign; '{slug}' is replaced by the issue's slug.", None, max_length=100
    )
    enabled: bool = doc("Set false to add no UTM parameters.", True)


# ----------------------------------------------------------------- the issue
@dataclass(frozen=True, kw_only=True)
class Issue:
    """One issue of the newsletter."""

    subject: HeaderText = doc("The email's subject line.", max_length=200)
    name: Text = doc("The issue's name, e.g. 'Q1 2026'.", max_length=80)
    date: date = doc("The issue's date, YYYY-MM-DD.")
    masthead: Masthead = doc("The top of the issue.")
    sections: list[Section] = doc(
        "The sections, in order; each has a `kind`.", min_items=1, max_items=60
    )
    preheader: HeaderText | None = doc(
        "The inbox preview line shown after the subject.", None, max_length=250
    )
    greeting: Text | None = doc(
        "A personal first line, e.g. 'Hi {name},'; '{name}' is the recipient's name column. "
        "Recipients without a name, and the web version, get `greeting_fallback`.",
        None,
        max_length=200,
    )
    greeting_fallback: Text = doc(
        "The greeting when there is no name.", "Hi there,", max_length=200
    )
    intro: Markdown | None = doc("The opening text (Markdown).", None, max_length=20000)
    lang: Text | None = doc(
        "Language tag, e.g. 'en'; defaults to the newsletter's.", None, max_length=20
    )
    utm: Utm | None = doc(
        "UTM parameters for this issue; each set key overrides dispatch.yaml's.", None
    )
    # filled by the loader, not by the manifest
    slug: str = field(default="", metadata={"internal": True})
    path: str = field(default="", metadata={"internal": True})


def documented_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields a YAML file may set: each has its ``doc``; internal ones have none."""
    return [f for f in dataclasses.fields(cls) if "doc" in f.metadata]
