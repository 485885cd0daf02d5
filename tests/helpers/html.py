"""Reading built HTML back the way a test needs it: tags, headings, title and text."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class Page(HTMLParser):
    """What html.parser sees in an HTML document: tags, headings, text and attributes."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[tuple[int, str]] = []
        self.data: list[str] = []
        self.title = ""
        self._heading: tuple[int, list[str]] | None = None
        self._in_title = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = (int(tag[1]), [])
        self._in_title = self._in_title or tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if self._heading and tag == f"h{self._heading[0]}":
            level, parts = self._heading
            self.headings.append((level, " ".join("".join(parts).split())))
            self._heading = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        self.data.append(data)
        if self._heading:
            self._heading[1].append(data)
        if self._in_title:
            self.title += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        """The attributes of every ``tag`` element, in document order."""
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def text(self) -> str:
        """All text, whitespace (and no-break spaces) collapsed."""
        return " ".join("".join(self.data).replace("\xa0", " ").split())
