"""`dispatch add`: fetch a page, read its title and description, append an item to a section.

Curators collect links; this saves the copy-and-paste. The fetch is bounded
(timeout, size, redirects, http(s) only, also after redirects) and the
manifest is edited with a round-trip YAML parser, so its comments and layout
stay as the owner wrote them.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import IO

from dispatch_mail.errors import FetchError, UsageError
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.loader import resolve_issue_dir
from dispatch_mail.project.paths import MANIFEST_FILE, shown_path
from dispatch_mail.project.urls import url_problem
from dispatch_mail.version import __version__

MAX_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
USER_AGENT = f"dispatch/{__version__} (+newsletter link curation)"


@dataclass
class PageInfo:
    url: str  # after redirects
    title: str | None
    description: str | None
    site_name: str | None


class _Meta(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            if key and "content" in a and key not in self.meta:
                self.meta[key] = a["content"]
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """We follow redirects ourselves, checking each target against the URL rule."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _one_line(text: str | None) -> str | None:
    return " ".join(text.split()) if text else None


def fetch_page(url: str, timeout: float = 10.0) -> PageInfo:
    """Fetch ``url`` (http/https only, ≤ 5 redirects, ≤ 2 MB) and read its title and description."""
    opener = urllib.request.build_opener(_NoRedirect)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        problem = url_problem(current)
        if problem or not current.lower().startswith(("http://", "https://")):
            raise FetchError(f"{current}: {problem or 'only http and https pages can be added'}")
        request = urllib.request.Request(
            current, headers={"User-Agent": USER_AGENT, "Accept": "text/html,*/*;q=0.5"}
        )
        try:
            response = opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                current = urllib.parse.urljoin(current, exc.headers["Location"])
                continue
            raise FetchError(f"{current}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(
                f"{current}: {'timed out' if 'timed out' in str(reason) else reason}"
            ) from None
        with response:
            kind = response.headers.get_content_type()
            if kind not in ("text/html", "application/xhtml+xml"):
                raise FetchError(f"{current}: not an HTML page ({kind})")
            raw = response.read(MAX_BYTES + 1)
            charset = response.headers.get_content_charset() or "utf-8"
        html = raw[:MAX_BYTES].decode(charset, errors="replace")
        parser = _Meta()
        parser.feed(html)
        m = parser.meta
        title = (
            m.get("og:title") or m.get("twitter:title") or " ".join(parser.title.split()) or None
        )
        description = (
            m.get("og:description") or m.get("twitter:description") or m.get("description") or None
        )
        site_name = m.get("og:site_name")
        return PageInfo(current, _one_line(title), _one_line(description), _one_line(site_name))
    raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")


# a section kind → its new item, from the page and the URL to keep
_ITEM_SHAPES: dict[str, Callable[[PageInfo, str], dict[str, str] | str]] = {
    "reading_list": lambda p, url: {
        "title": p.title or url,
        "url": url,
        "note": p.description or "",
        **({"via": p.site_name} if p.site_name else {}),
    },
    "links": lambda p, url: {"title": p.title or url, "text": p.description or "", "url": url},
    "stories": lambda p, url: {"title": p.title or url, "url": url, "summary": p.description or ""},
    "roundup": lambda p, url: {
        "title": p.title or url,
        "url": url,
        **({"note": p.description} if p.description else {}),
    },
    "announcements": lambda p, url: (
        f"[{(p.title or url).replace('[', '(').replace(']', ')')}]({url})"
    ),
}


def add_link(
    issue_dir: Path,
    url: str,
    section: str | None = None,
    *,
    timeout: float = 10.0,
    keep_url: bool = False,
) -> tuple[str, PageInfo]:
    """Append an item for ``url`` to the named section (heading, id or kind).

    Without a name, the first reading list or links section takes it.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    issue_dir = resolve_issue_dir(Path(issue_dir))
    path = issue_dir / MANIFEST_FILE
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    try:
        # a draft may still have empty fields, so only the YAML itself must be sound here
        data = yaml.load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise UsageError(
            f"{shown_path(path)}{where}: YAML syntax error: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
        raise UsageError(f"{shown_path(path)}: has no list of sections to add to")
    page = fetch_page(url, timeout=timeout)
    sections = data.get("sections") or []
    chosen = None
    for index, candidate in enumerate(sections):
        names = {
            str(candidate.get("heading") or "").lower(),
            str(candidate.get("id") or "").lower(),
            str(candidate.get("kind")),
        }
        if section is None and candidate.get("kind") in ("reading_list", "links"):
            chosen = index
            break
        if section is not None and section.lower() in names:
            chosen = index
            break
    if chosen is None:
        known = ", ".join(
            f"{s.get('heading') or s.get('kind')!r}"
            for s in sections
            if s.get("kind") in _ITEM_SHAPES
        )
        if section:
            raise UsageError(
                f"no section {section!r} that takes links in {shown_path(path)} (sections: {known})"
            )
        raise UsageError(f"no reading_list or links section in {shown_path(path)}", hint="section")
    target = sections[chosen]
    kind = target.get("kind")
    if kind not in _ITEM_SHAPES:
        raise UsageError(f"section {section!r} is of kind {kind!r}, which takes no links")
    final_url = url if keep_url else page.url
    item = _ITEM_SHAPES[kind](page, final_url)
    target.setdefault("items", [])
    if target["items"] is None:
        target["items"] = []
    target["items"].append(item)
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    atomic_write(path, buffer.getvalue())
    label = target.get("heading") or kind
    return str(label), page
