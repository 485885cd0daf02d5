"""A fetched page's title, description and site name: bytes → text → what its head says.

Why not html.parser: on Python 3.11 it takes quadratic time on some inputs (32 KB
of "<a" took 5 s, 128 KB over a minute), and a page is whatever its site sends.
This scanner reads only what `dispatch add` uses (``<title>`` and ``<meta>``),
skips comments, scripts and styles, stops at ``<body>``, and never looks at a
character twice except to back out of an unclosed quote.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass, field

# charsets a page may name: the ordinary text encodings of the web. Python also
# knows codecs that are not (punycode, idna, unicode_escape, utf-7, undefined…):
# a page naming one of those, or a name no codec has, is read as UTF-8.
_WEB_CODEC = re.compile(
    r"(utf-8|utf-16(-[lb]e)?|ascii|iso8859-\d+|cp\d+|mac-[a-z]+|koi8-[a-z]|shift_jis\w*"
    r"|euc_\w+|gb2312|gbk|gb18030|big5\w*|iso2022_\w+|hz|johab|tis-620|kz1048|ptcp154)"
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_PRESCAN_BYTES = 1024  # where a <meta charset> must be, as browsers read it

_TAG = re.compile(r"<(!--|/?[A-Za-z][^\s/>]*)")
_ATTR = re.compile(r"""[\s/]*([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""")
_MAX_ATTRIBUTES = 32  # per tag; and tags read before giving up (a real head has hundreds):
_MAX_TAGS = 5000
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CHARSET_IN_TYPE = re.compile(r"charset\s*=\s*[\"']?([^\s;\"']+)", re.I)


@dataclass(frozen=True)
class PageInfo:
    url: str  # after redirects
    title: str | None
    description: str | None
    site_name: str | None


@dataclass
class _Head:
    title: str | None = None
    meta: dict[str, str] = field(default_factory=dict)  # name or property → content, first wins
    charset: str | None = None


def _closing(name: str) -> re.Pattern[str]:
    return re.compile(rf"</{name}[\s/>]", re.I)


_CLOSERS = {name: _closing(name) for name in _RAW_TEXT}


def _attributes(text: str, pos: int) -> tuple[dict[str, str], int]:
    """A tag's attributes from ``pos``; the position after its ``>`` (or where it broke off)."""
    found: dict[str, str] = {}
    for _ in range(_MAX_ATTRIBUTES):
        if pos >= len(text) or text[pos] == ">":
            break
        match = _ATTR.match(text, pos)
        if match is None or match.end() == pos:
            break
        name = match.group(1).lower()
        value = next((v for v in match.group(2, 3, 4) if v is not None), "")
        found.setdefault(name, html.unescape(value))
        pos = match.end()
    else:  # no tag we read has more: skip the rest of this one
        end = text.find(">", pos)
        return found, len(text) if end < 0 else end + 1
    while pos < len(text) and text[pos] in " \t\r\n\f/":
        pos += 1
    return found, pos + 1 if text.startswith(">", pos) else pos


def _scan(text: str) -> _Head:
    head = _Head()
    pos = 0
    for _ in range(_MAX_TAGS):
        tag = _TAG.search(text, pos)
        if tag is None:
            break
        if tag.group(1) == "!--":
            end = text.find("-->", tag.end())
            if end < 0:
                break
            pos = end + 3
            continue
        name = tag.group(1).lower()
        if name in ("/head", "body"):
            break
        attributes, pos = _attributes(text, tag.end())
        if name == "meta":
            key = (attributes.get("property") or attributes.get("name") or "").lower()
            if key and "content" in attributes:
                head.meta.setdefault(key, attributes["content"])
            declared = attributes.get("charset")
            if declared is None and attributes.get("http-equiv", "").lower() == "content-type":
                in_type = _CHARSET_IN_TYPE.search(attributes.get("content", ""))
                declared = in_type.group(1) if in_type else None
            if declared and head.charset is None:
                head.charset = declared
        elif name in _RAW_TEXT:
            closer = _CLOSERS[name].search(text, pos)
            if closer is None:
                break  # the rest of the page is this element's text
            if name == "title" and head.title is None:
                head.title = html.unescape(text[pos : closer.start()])
            pos = closer.start()
    return head


def _codec(label: str | None) -> str | None:
    """The codec for a charset label, if it is an ordinary web encoding."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None
    return name if _WEB_CODEC.fullmatch(name) else None


def decode_page(body: bytes, header_charset: str | None) -> str:
    """The page as text: its BOM, else a usable header charset, else its meta charset, else
    UTF-8; bytes that do not decode become U+FFFD."""
    for bom, bom_codec in _BOMS:
        if body.startswith(bom):
            return body.decode(bom_codec, "replace")
    codec = _codec(header_charset)
    if codec is None:
        codec = _codec(_scan(body[:_PRESCAN_BYTES].decode("latin-1")).charset)
        if codec is not None and codec.startswith("utf-16"):
            codec = "utf-8"  # the page could be read as ASCII, so it is not UTF-16
    return body.decode(codec or "utf-8", "replace")


def one_line(text: str | None) -> str | None:
    """Text as one line with no control characters, or None if nothing is left."""
    if not text:
        return None
    return " ".join(_CONTROL.sub("", text).split()) or None


def read_page(url: str, body: bytes, header_charset: str | None) -> PageInfo:
    """What the page's head says about it: OpenGraph first, then Twitter cards, then HTML."""
    head = _scan(decode_page(body, header_charset))
    meta = {key: value for key, value in head.meta.items() if one_line(value)}
    title: str | None = meta.get("og:title") or meta.get("twitter:title") or head.title
    description = (
        meta.get("og:description") or meta.get("twitter:description") or meta.get("description")
    )
    return PageInfo(url, one_line(title), one_line(description), one_line(meta.get("og:site_name")))
