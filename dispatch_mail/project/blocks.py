"""What manifest fields are made of: the scalar kinds, ``doc()``, and the blocks items share.

``issue.py`` builds the sections from these and re-exports every name, so
``from dispatch_mail.project.issue import Text`` keeps working. They live apart
so that the issue model stays one readable file.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dispatch_mail.project.markup import Inline, LinkSpan
from dispatch_mail.project.when import moment_problem, span_problems, zone_problem


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


class Moment(str):
    """A date (a whole day) or an ISO 8601 date-time, with or without a UTC offset."""

    KIND_NAME: ClassVar[str] = "date or date-time"
    problem_in = staticmethod(moment_problem)  # the schema asks each scalar kind that has one


class TimeZone(str):
    """An IANA time zone name, e.g. ``Europe/Stockholm``."""

    KIND_NAME: ClassVar[str] = "time zone"
    problem_in = staticmethod(zone_problem)


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
    caption: Inline | None = doc("A line shown under the image.", None, max_length=600)
    credit: Text | None = doc(
        "Who made it, e.g. 'Photo: Ana Lima'; shown after the caption.", None, max_length=200
    )


@dataclass(frozen=True, kw_only=True)
class Action:
    """A call-to-action link, shown as a button or an arrow link."""

    label: Text = doc("The link text; say where it goes (not 'click here').", max_length=120)
    url: Url = doc("Where it goes.")


@dataclass(frozen=True, kw_only=True)
class Announcement:
    """An announcement with an image; a plain text item is the text alone."""

    SHORTHAND: ClassVar[str] = "text"  # a plain value sets this field (project/schema.py)
    text: Inline = doc("The announcement.", max_length=1000)
    image: Image | None = doc("An image under it.", None)

    # announcements were Inline text before they could hold an image: read them as their text
    @property
    def plain(self) -> str:
        return self.text.plain

    def links(self) -> list[LinkSpan]:
        return self.text.links()


def linked_title_problems(title: Inline | None) -> list[tuple[str, str]]:
    """A title that is a link already: a link inside it would nest one anchor in another."""
    if title is not None and title.links():
        return [("title", "must not hold a link: it links to `url`")]
    return []


class LinkedTitle:
    """An item whose title is itself a link: the schema asks it for the title's problems."""

    title: Inline

    def field_problems(self) -> list[tuple[str, str]]:
        return linked_title_problems(self.title)


@dataclass(frozen=True, kw_only=True)
class TitleLink(LinkedTitle):
    """A title that links out, in a compact list."""

    title: Inline = doc("The title (code and emphasis; no link of its own).", max_length=300)
    url: Url = doc("The link.")


@dataclass(frozen=True, kw_only=True)
class LinkGroup:
    """A sub-heading over a compact list of linked titles, as link-heavy weeklies have."""

    heading: Text = doc("The sub-heading, e.g. 'Walkthroughs'.", max_length=160)
    items: list[TitleLink] = doc("The linked titles.", min_items=1, max_items=200)


@dataclass(frozen=True, kw_only=True)
class Event:
    """An event: when (in its own time zone), where, how to register; it gets an .ics file."""

    title: Inline = doc("The event's name.", max_length=300)
    start: Moment = doc(
        "When it starts: `2026-05-12T09:00` (with `timezone`), `2026-05-12T09:00+02:00`, "
        "or a date, `2026-05-12`, for an all-day event."
    )
    end: Moment | None = doc(
        "When it ends, written like `start`; for an all-day event, its last day.", None
    )
    timezone: TimeZone | None = doc(
        "The IANA time zone of its times, e.g. 'Europe/Stockholm'; needed unless they "
        "carry an offset.",
        None,
    )
    place: Text | None = doc("The venue or room, e.g. 'Aula Magna'.", None, max_length=200)
    online: Url | None = doc("Where to join online.", None)
    description: Inline | None = doc("What it is.", None, max_length=3000)
    action: Action | None = doc("Registration, shown as a button.", None)

    def field_problems(self) -> list[tuple[str, str]]:
        """Rules between fields, each reported at its field (project/schema.py asks)."""
        return span_problems(self.start, self.end, self.timezone)
