"""The typed model of an issue manifest (``issues/<slug>/issue.yaml``).

Each field carries its documentation in ``metadata["doc"]``: the loader
validates against these classes and ``docs/manifest.md`` is generated from
them, so the reference cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, Literal, get_args

from dispatch_mail.project.blocks import Action as Action
from dispatch_mail.project.blocks import Announcement as Announcement
from dispatch_mail.project.blocks import Color as Color
from dispatch_mail.project.blocks import EmailAddress as EmailAddress
from dispatch_mail.project.blocks import Event as Event
from dispatch_mail.project.blocks import HeaderText as HeaderText
from dispatch_mail.project.blocks import Image as Image
from dispatch_mail.project.blocks import ImageUrl as ImageUrl
from dispatch_mail.project.blocks import LinkedTitle, linked_title_problems
from dispatch_mail.project.blocks import LinkGroup as LinkGroup
from dispatch_mail.project.blocks import LongText as LongText
from dispatch_mail.project.blocks import Moment as Moment
from dispatch_mail.project.blocks import Text as Text
from dispatch_mail.project.blocks import TimeZone as TimeZone
from dispatch_mail.project.blocks import TitleLink as TitleLink
from dispatch_mail.project.blocks import Url as Url
from dispatch_mail.project.blocks import doc as doc
from dispatch_mail.project.markup import Inline, Markdown

Direction = Literal["ltr", "rtl", "auto"]


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
        "(e.g. '5 stories · Ecosystem digest · APAC roundup'); `[]` shows the date alone.",
        None,
        max_items=8,
    )


# ----------------------------------------------------------------- section items
@dataclass(frozen=True, kw_only=True)
class Story(LinkedTitle):
    """A story card: one of the newsletter's own articles."""

    title: Inline = doc(
        "The article's title (code and emphasis; it links to the article).", max_length=300
    )
    url: Url = doc("The article.")
    summary: Inline = doc("A paragraph on what the article says.", max_length=3000)
    kicker: Text | None = doc(
        "A label above the title, e.g. 'Community Spotlight' or 'User Story'.", None, max_length=80
    )
    quote: Quote | None = doc("A pull quote from the article.", None)
    link_label: Text | None = doc(
        "Text of the link to the article; default: 'Read the full story →' in the issue's "
        "language.",
        None,
        max_length=120,
    )
    image: Image | None = doc("An image for the card.", None)
    byline: Text | None = doc("Who wrote it, e.g. 'By Ana Lima'.", None, max_length=200)
    date: date | None = doc("When it was published, YYYY-MM-DD; shown with the byline.", None)
    lang: Text | None = doc(
        "Its language, when it differs from the issue's (e.g. 'ja' in an Arabic issue).",
        None,
        max_length=20,
    )
    dir: Direction | None = doc("Its text direction; default: from its language.", None)


@dataclass(frozen=True, kw_only=True)
class ReadingItem(LinkedTitle):
    """A piece of third-party writing worth reading."""

    title: Inline = doc(
        "The piece's title (code and emphasis); it links to the piece.", max_length=300
    )
    url: Url = doc("The piece.")
    note: Inline = doc("Why it matters to readers.", max_length=3000)
    via: Text | None = doc(
        "Attribution shown as 'Via X', e.g. 'Walletinvestor.com'.", None, max_length=120
    )
    lang: Text | None = doc(
        "Its language, when it differs from the issue's (e.g. 'ja' in an Arabic issue).",
        None,
        max_length=20,
    )
    dir: Direction | None = doc("Its text direction; default: from its language.", None)


@dataclass(frozen=True, kw_only=True)
class RoundupItem(LinkedTitle):
    """One item of a regional roundup."""

    title: Inline = doc(
        "The item's title (code and emphasis); it links to the article.", max_length=300
    )
    url: Url = doc("The article.")
    note: Inline | None = doc("What it is about.", None, max_length=3000)
    orgs: list[Text] = doc(
        "Organisations involved, shown as 'Huawei · Zhejiang University'.", [], max_items=12
    )
    lang: Text | None = doc(
        "Its language, when it differs from the issue's (e.g. 'ja' in an Arabic issue).",
        None,
        max_length=20,
    )
    dir: Direction | None = doc("Its text direction; default: from its language.", None)


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
    title: Inline | None = doc(
        "A bold title above the text (code, emphasis, links).", None, max_length=300
    )
    label: Text | None = doc(
        "The link's text; default: 'Read it here →' in the issue's language.", None, max_length=120
    )
    image: Image | None = doc("An image above the text.", None)
    lang: Text | None = doc(
        "Its language, when it differs from the issue's (e.g. 'ja' in an Arabic issue).",
        None,
        max_length=20,
    )
    dir: Direction | None = doc("Its text direction; default: from its language.", None)


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
    lang: Text | None = doc(
        "Its language, when it differs from the issue's (e.g. 'ja' in an Arabic issue).",
        None,
        max_length=20,
    )
    dir: Direction | None = doc("Its text direction; default: from its language.", None)


@dataclass(frozen=True, kw_only=True)
class FeaturedSection(SectionBase):
    """An event or lead article in a highlighted card."""

    kind: ClassVar[str] = "featured"
    title: Inline = doc("The card's title (code and emphasis).", max_length=300)
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
    actions: list[Action] = doc(
        "Several calls to action, as buttons one after another; instead of `action`.",
        [],
        max_items=4,
    )
    image: Image | None = doc("An image for the card.", None)

    def field_problems(self) -> list[tuple[str, str]]:
        """Rules between fields, each reported at its field (project/schema.py asks)."""
        problems = linked_title_problems(self.title) if self.url or self.buttons else []
        if self.action is not None and self.actions:
            problems.append(("actions", "give `action` or `actions`, not both"))
        return problems

    @property
    def buttons(self) -> list[Action]:
        """Every call to action, from `action` or `actions`."""
        return [self.action] if self.action else list(self.actions)


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
    items: list[Announcement] = doc(
        "The announcements, one bullet each: a text, or a mapping `{text, image}`.",
        min_items=1,
        max_items=50,
        max_length=1000,
    )


@dataclass(frozen=True, kw_only=True)
class LinksSection(SectionBase):
    """Paragraphs each followed by a link."""

    kind: ClassVar[str] = "links"
    items: list[LinkItem] = doc("The items.", [], max_items=100)
    groups: list[LinkGroup] = doc(
        "Title-only link lists under sub-headings, after the items.", [], max_items=40
    )

    def field_problems(self) -> list[tuple[str, str]]:
        return [] if self.items or self.groups else [("items", "needs at least 1 item or a group")]


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


@dataclass(frozen=True, kw_only=True)
class EventsSection(SectionBase):
    """Events, each with its time in its own zone, its place, and an .ics calendar file."""

    kind: ClassVar[str] = "events"
    items: list[Event] = doc("The events, in the order shown.", min_items=1, max_items=50)


Section = (
    FeaturedSection
    | StoriesSection
    | ReadingListSection
    | RoundupSection
    | AnnouncementsSection
    | LinksSection
    | CallToActionSection
    | MarkdownSection
    | EventsSection
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
    greeting_fallback: Text | None = doc(
        "The greeting when there is no name; default: 'Hi there,' in the issue's language.",
        None,
        max_length=200,
    )
    intro: Markdown | None = doc("The opening text (Markdown).", None, max_length=20000)
    lang: Text | None = doc(
        "Language tag (BCP 47), e.g. 'en', 'ar', 'ja', 'pt-BR'; defaults to the newsletter's. "
        "It picks the theme's words and date format, and the text direction.",
        None,
        max_length=20,
    )
    dir: Direction | None = doc(
        "Text direction; default: from lang ('rtl' for Arabic, Hebrew, Persian, Urdu…).", None
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
