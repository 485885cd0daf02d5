"""The built issue as the checks see it, with facts gathered in one pass over its HTML.

No check parses HTML itself: each judges the facts gathered here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from dispatch_mail.project.issue import Issue
from dispatch_mail.project.settings import Project
from dispatch_mail.render import Rendered


@dataclass
class Link:
    href: str
    text: str = ""
    aria_label: str = ""
    image_alt: str = ""

    @property
    def visible_text(self) -> str:
        """What a reader sees, or a screen reader says: the link's text, else its image's alt."""
        return " ".join((self.text or self.image_alt).split())


class HtmlFacts(HTMLParser):
    """What the checks need to know about the HTML, gathered while it is parsed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = ""
        self.title = ""
        self.metas: list[dict[str, str]] = []
        self.images: list[dict[str, str]] = []
        self.links: list[Link] = []
        self.headings: list[tuple[int, str]] = []
        self.elements: set[str] = set()
        self.style_blocks: list[str] = []
        self.inline_styles: list[str] = []
        self.tables: list[dict[str, str]] = []
        self.text_parts: list[str] = []
        self._link: Link | None = None
        self._heading_level: int | None = None
        self._heading_text = ""
        self._in_style = self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        self.elements.add(tag)
        if "style" in a:
            self.inline_styles.append(a["style"])
        if tag == "html":
            self.lang = a.get("lang", "")
        elif tag == "meta":
            self.metas.append(a)
        elif tag == "img":
            self.images.append(a)
            if self._link is not None:
                self._link.image_alt += a.get("alt", "")
        elif tag == "a" and "href" in a:
            self._link = Link(a["href"], aria_label=a.get("aria-label", ""))
        elif tag == "table":
            self.tables.append(a)
        elif tag == "style":
            self._in_style = True
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading_level, self._heading_text = int(tag[1]), ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self.links.append(self._link)
            self._link = None
        elif tag == "style":
            self._in_style = False
        elif tag == "title":
            self._in_title = False
        elif self._heading_level is not None and tag == f"h{self._heading_level}":
            self.headings.append((self._heading_level, " ".join(self._heading_text.split())))
            self._heading_level = None

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_blocks.append(data)
            return
        if self._in_title:
            self.title += data
        if self._link is not None:
            self._link.text += data
        if self._heading_level is not None:
            self._heading_text += data
        self.text_parts.append(data)


def html_facts(html: str) -> HtmlFacts:
    facts = HtmlFacts()
    facts.feed(html)
    facts.close()
    return facts


@dataclass
class Context:
    """The built issue as every check sees it: parsed once, judged many times."""

    project: Project
    issue: Issue
    rendered: Rendered
    facts: HtmlFacts
