"""`dispatch add`: fetch a page, read its title and description, append an item to a section.

Curators collect links; this saves the copy-and-paste. What a page says is its
site's text, not the curator's, so it goes into the manifest as literal text:
control characters dropped, cut to the field's length, and in Markdown fields
every character the Markdown reader would act on escaped, so that a description
cannot become a link or bold type in the email. The fetch is bounded and refuses
internal addresses (fetch.py); the manifest is edited with a round-trip YAML
parser, so its comments and layout stay as the owner wrote them.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dispatch_mail.authoring.fetch import fetch
from dispatch_mail.authoring.pagemeta import PageInfo, read_page
from dispatch_mail.errors import UsageError
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.issue import (
    AnnouncementsSection,
    LinkItem,
    ReadingItem,
    RoundupItem,
    Story,
)
from dispatch_mail.project.loader import resolve_issue_dir
from dispatch_mail.project.paths import MANIFEST_FILE, shown_path
from dispatch_mail.project.urls import url_problem

__all__ = ["PageInfo", "add_item", "add_link", "fetch_page", "literal_markdown"]


def fetch_page(url: str, timeout: float = 10.0, *, allow_private: bool = False) -> PageInfo:
    """Fetch ``url`` (bounded: see fetch.py) and read its title and description."""
    fetched = fetch(url, timeout=timeout, allow_private=allow_private)
    return read_page(fetched.url, fetched.body, fetched.charset)


# ------------------------------------------------------------------ the page's text as ours

# what project/markup.py's inline reader acts on: a backslash escapes any of these
_ALWAYS_ESCAPED = frozenset("\\`*[]")


def _escaped(text: str) -> list[str]:
    """Each character of ``text`` as the inline Markdown that reads back as it."""
    pieces: list[str] = []
    for i, ch in enumerate(text):
        if ch in _ALWAYS_ESCAPED:
            pieces.append("\\" + ch)
        elif ch == "_" and not (text[i - 1 : i].isalnum() and text[i + 1 : i + 2].isalnum()):
            pieces.append("\\_")
        else:
            pieces.append(ch)
    return pieces


def literal_markdown(text: str) -> str:
    """``text`` as inline Markdown that reads back as exactly ``text``, with no markup.

    ``_`` between two letters or digits is left alone: the reader never takes it as
    emphasis (snake_case), and escaping it would clutter the manifest.
    """
    return "".join(_escaped(text))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def _literal(text: str, limit: int) -> str:
    """Escaped, and cut so that the escaped text (not the page's) fits the field."""
    pieces = _escaped(text)
    if sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    kept, room = [], limit - 1  # and "…"
    for piece in pieces:
        if len(piece) > room:
            break
        kept.append(piece)
        room -= len(piece)
    return "".join(kept).rstrip() + "…"


def _max_length(model: type, name: str) -> int:
    """A field's length limit, from the manifest model itself."""
    found = next(f for f in dataclasses.fields(model) if f.name == name)
    return int(found.metadata["max_length"])


def _markdown_url(url: str) -> str:
    """A URL that the inline reader's ``(…)`` cannot cut short."""
    return url.replace("(", "%28").replace(")", "%29")


def _reading_item(page: PageInfo, url: str) -> dict[str, str]:
    item = {
        "title": _literal(page.title or url, _max_length(ReadingItem, "title")),
        "url": url,
        "note": _literal(page.description or "", _max_length(ReadingItem, "note")),
    }
    if page.site_name:
        item["via"] = _clip(page.site_name, _max_length(ReadingItem, "via"))
    return item


def _link_item(page: PageInfo, url: str) -> dict[str, str]:
    return {
        "title": _literal(page.title or url, _max_length(LinkItem, "title")),
        "text": _literal(page.description or "", _max_length(LinkItem, "text")),
        "url": url,
    }


def _story(page: PageInfo, url: str) -> dict[str, str]:
    return {
        "title": _literal(page.title or url, _max_length(Story, "title")),
        "url": url,
        "summary": _literal(page.description or "", _max_length(Story, "summary")),
    }


def _roundup_item(page: PageInfo, url: str) -> dict[str, str]:
    item = {"title": _literal(page.title or url, _max_length(RoundupItem, "title")), "url": url}
    if page.description:
        item["note"] = _literal(page.description, _max_length(RoundupItem, "note"))
    return item


def _announcement(page: PageInfo, url: str) -> str:
    target = _markdown_url(url)
    room = _max_length(AnnouncementsSection, "items") - len(target) - len("[]()")
    return f"[{_literal(page.title or url, max(room, 1))}]({target})"


# a section kind → its new item, from the page and the URL to keep
_ITEM_SHAPES: dict[str, Callable[[PageInfo, str], dict[str, str] | str]] = {
    "reading_list": _reading_item,
    "links": _link_item,
    "stories": _story,
    "roundup": _roundup_item,
    "announcements": _announcement,
}


def _kind(section: object) -> str | None:
    kind = section.get("kind") if isinstance(section, dict) else None
    return kind if isinstance(kind, str) else None


def _choose_section(sections: list[object], name: str | None, shown: str) -> dict[str, object]:
    """The section to add to: by heading, id or kind; by default the first reading list
    or links section."""
    for candidate in sections:
        if not isinstance(candidate, dict):
            continue
        kind = _kind(candidate)
        if name is None:
            if kind in ("reading_list", "links"):
                return candidate
            continue
        names = {
            str(candidate.get("heading") or "").lower(),
            str(candidate.get("id") or "").lower(),
            str(kind),
        }
        if name.lower() in names:
            if kind not in _ITEM_SHAPES:
                raise UsageError(f"section {name!r} is of kind {kind!r}, which takes no links")
            return candidate
    if name is None:
        raise UsageError(f"no reading_list or links section in {shown}", hint="section")
    known = ", ".join(
        repr(str(s.get("heading") or _kind(s)))
        for s in sections
        if isinstance(s, dict) and _kind(s) in _ITEM_SHAPES
    )
    raise UsageError(f"no section {name!r} that takes links in {shown} (sections: {known})")


def _open_section(
    issue_dir: Path, section: str | None
) -> tuple[Any, Any, dict[str, object], list[object], Path]:
    """The manifest (round-trip YAML), the section to add to and its items, before any fetch."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    issue_dir = resolve_issue_dir(Path(issue_dir))
    path = issue_dir / MANIFEST_FILE
    shown = shown_path(path)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    try:
        # a draft may still have empty fields, so only the YAML itself must be sound here
        data = yaml.load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{shown}: not UTF-8 text") from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise UsageError(
            f"{shown}{where}: YAML syntax error: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
        raise UsageError(f"{shown}: has no list of sections to add to")
    target = _choose_section(data["sections"], section, shown)
    if target.get("items") is None:
        target["items"] = []
    items = target["items"]
    if not isinstance(items, list):
        label = section or _kind(target)
        raise UsageError(f"{shown}: the items of section {label!r} are not a list")
    return yaml, data, target, items, path


def _save(yaml: Any, data: Any, path: Path) -> None:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    atomic_write(path, buffer.getvalue())


def add_link(
    issue_dir: Path,
    url: str,
    section: str | None = None,
    *,
    timeout: float = 10.0,
    keep_url: bool = False,
    allow_private: bool = False,
) -> tuple[str, PageInfo]:
    """Append an item for ``url`` to the named section (heading, id or kind).

    Without a name, the first reading list or links section takes it. The section
    is chosen before anything is fetched, so a wrong name costs no request.
    """
    yaml, data, target, items, path = _open_section(issue_dir, section)
    page = fetch_page(url, timeout, allow_private=allow_private)
    kind = _kind(target)
    assert kind is not None
    items.append(_ITEM_SHAPES[kind](page, url if keep_url else page.url))
    _save(yaml, data, path)
    return str(target.get("heading") or kind), page


def _typed_item(kind: str, title: str, url: str, note: str | None) -> dict[str, str] | str:
    """An item as the curator typed it: their note is their own Markdown, kept as written.

    A missing note is left empty where the section needs one, so `dispatch build`
    lists it among the fields to fill in.
    """
    if kind == "announcements":
        link = f"[{literal_markdown(title)}]({_markdown_url(url)})"
        return f"{link} {note}" if note else link
    text_key = {"reading_list": "note", "links": "text", "stories": "summary", "roundup": "note"}
    item = {"title": title, "url": url}
    if note or kind != "roundup":  # a roundup item's note is optional
        item[text_key[kind]] = note or ""
    return item


def add_item(
    issue_dir: Path, title: str, url: str, note: str | None = None, section: str | None = None
) -> str:
    """Append an item typed in by hand (nothing is fetched) to a section; its label.

    The URL must pass the same rule as every link of a manifest.
    """
    title = " ".join(title.split())
    if not title:
        raise UsageError("the item's title must not be empty")
    url = url.strip()
    problem = url_problem(url)
    if problem:
        raise UsageError(f"{url}: {problem}")
    note = note.strip() if note is not None else None
    yaml, data, target, items, path = _open_section(issue_dir, section)
    kind = _kind(target)
    assert kind is not None
    items.append(_typed_item(kind, title, url, note or None))
    _save(yaml, data, path)
    return str(target.get("heading") or kind)
