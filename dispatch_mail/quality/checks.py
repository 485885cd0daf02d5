"""`dispatch check`: what will go wrong in inboxes, found offline before anyone sees the issue.

Each check is a function of the built issue that returns findings; errors fail
the check, warnings fail it only with --strict, notes never do. The email
clients' support data is caniemail.com's, shipped in dispatch_mail/data so the
check needs no network (only --links goes out, on purpose).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from dispatch_mail.errors import ContentError
from dispatch_mail.project.issue import (
    AnnouncementsSection,
    FeaturedSection,
    Issue,
    LinksSection,
    ReadingListSection,
    RoundupSection,
    StoriesSection,
)
from dispatch_mail.project.loader import load
from dispatch_mail.project.settings import Project
from dispatch_mail.publish.build import GMAIL_CLIP_BYTES, SIZE_WARNING_BYTES
from dispatch_mail.render import Rendered, render_issue

DATA_FILE = Path(__file__).resolve().parent / "data" / "caniemail.json"
LEVELS = ("error", "warning", "note")
SUBJECT_MAX = 60
PREHEADER_RANGE = (30, 140)
VAGUE_LINK_TEXT = {
    "click here",
    "here",
    "click",
    "link",
    "this link",
    "read more",
    "more",
    "learn more",
    "this",
    "go",
}
# Progressive enhancements of the theme: clients that lack them still show a readable email.
GRACEFUL_FEATURES = {
    "css-border-radius",
    "css-at-media",
    "css-at-media-prefers-color-scheme",
    "css-color-scheme",
    "html-meta-color-scheme",
    "css-letter-spacing",
    "css-text-transform",
    "css-important",
    "css-max-width",
    "css-selector-attribute",
    "css-selector-child",
    "css-selector-descendant",
    "css-selector-class",
    "css-selector-grouping",
    "css-display",
    "css-pseudo-class-root",
    "html-role",
    "html-aria-label",
    "css-background-color",
    "css-box-sizing",
    "css-line-height",
    "css-border",
    "css-padding",
    "css-margin",
    "html-style",
    "css-font",
    "css-text-decoration",
    "html-blockquote",
    "html-code",
    "css-direction",
    "html-dir",
    "css-vertical-align",
    "css-width",
    "css-height",
    "css-font-weight",
    "css-font-size",
    "html-div",
    "css-unit-percent",
    "css-unit-px",
    "css-comments",
    "html-comments",
    "css-border-collapse",
    "css-mso-",
    "html-doctype",
    "html-lang",
    "css-text-align",
    "html-align",
    "html-width",
    "html-height",
}


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | note
    code: str  # e.g. "size.gmail-clip"
    message: str
    where: str = ""

    def __str__(self) -> str:
        where = f" [{self.where}]" if self.where else ""
        return f"{self.level}: {self.code}: {self.message}{where}"


@dataclass
class CheckReport:
    slug: str
    path: str
    findings: list[Finding] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def count(self, level: str) -> int:
        return sum(1 for f in self.findings if f.level == level)

    def failed(self, strict: bool = False) -> bool:
        return self.count("error") > 0 or (strict and self.count("warning") > 0)

    def to_dict(self) -> dict:
        return {
            "issue": self.slug,
            "path": self.path,
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "notes": self.count("note"),
            "stats": self.stats,
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }


# --------------------------------------------------------------------------- HTML facts
@dataclass
class Link:
    href: str
    text: str = ""
    aria_label: str = ""
    image_alt: str = ""


class _Facts(HTMLParser):
    """One pass over the HTML: what the checks need to know about it."""

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
        self._stack: list[str] = []
        self._link: Link | None = None
        self._heading: list | None = None
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
            self._heading = [int(tag[1]), ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self.links.append(self._link)
            self._link = None
        elif tag == "style":
            self._in_style = False
        elif tag == "title":
            self._in_title = False
        elif self._heading is not None and tag == f"h{self._heading[0]}":
            self.headings.append((self._heading[0], " ".join(self._heading[1].split())))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_blocks.append(data)
            return
        if self._in_title:
            self.title += data
        if self._link is not None:
            self._link.text += data
        if self._heading is not None:
            self._heading[1] += data
        self.text_parts.append(data)


def html_facts(html: str) -> _Facts:
    facts = _Facts()
    facts.feed(html)
    facts.close()
    return facts


# --------------------------------------------------------------------------- colour contrast
def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast_ratio(fg: str, bg: str) -> float:
    """WCAG 2.x contrast ratio of two hex colours."""
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


# --------------------------------------------------------------------------- the checks
@dataclass
class Context:
    project: Project
    issue: Issue
    rendered: Rendered
    facts: _Facts


def check_size(ctx: Context) -> list[Finding]:
    size = len(ctx.rendered.html.encode("utf-8"))
    out = []
    if size > GMAIL_CLIP_BYTES:
        out.append(
            Finding(
                "error",
                "size.gmail-clip",
                f"HTML is {size / 1024:.1f} KB; Gmail clips past {GMAIL_CLIP_BYTES // 1024} KB and hides the rest, the unsubscribe link included",
            )
        )
    elif size > SIZE_WARNING_BYTES:
        out.append(
            Finding(
                "warning",
                "size.near-clip",
                f"HTML is {size / 1024:.1f} KB, close to Gmail's {GMAIL_CLIP_BYTES // 1024} KB clipping threshold",
            )
        )
    return out


def section_weights(project: Project, issue: Issue, full_size: int) -> list[tuple[str, int]]:
    """Bytes of HTML each section adds: the issue rendered without it, subtracted from the whole."""
    weights = []
    for i, section in enumerate(issue.sections):
        rest = issue.sections[:i] + issue.sections[i + 1 :]
        if not rest:
            weights.append((section.heading or section.kind, full_size))
            continue
        without = render_issue(project, dataclasses.replace(issue, sections=rest))
        label = f"sections[{i}] {section.kind}" + (
            f" '{section.heading}'" if section.heading else ""
        )
        weights.append((label, full_size - len(without.html.encode("utf-8"))))
    return weights


def check_images(ctx: Context) -> list[Finding]:
    out = []
    for img in ctx.facts.images:
        src = img.get("src", "")
        where = src[:80]
        if "alt" not in img:
            out.append(
                Finding(
                    "error",
                    "image.alt",
                    "image without alt text: with images off (the default in many clients) it says nothing",
                    where,
                )
            )
        elif not img["alt"].strip() and img.get("role") != "presentation":
            out.append(
                Finding(
                    "warning",
                    "image.alt-empty",
                    "empty alt text: fine only for a decorative image",
                    where,
                )
            )
        if not img.get("width"):
            out.append(
                Finding(
                    "error",
                    "image.width",
                    "image without an explicit width: Outlook shows it at its natural size",
                    where,
                )
            )
        if not src.startswith("https://"):
            out.append(
                Finding(
                    "error",
                    "image.https",
                    "image not served over https: clients block or warn about it",
                    where,
                )
            )
    return out


def _link_text(link: Link) -> str:
    return " ".join((link.text or link.image_alt).split())


def check_links(ctx: Context) -> list[Finding]:
    out = []
    for link in ctx.facts.links:
        href = link.href.strip()
        scheme = href.split(":", 1)[0].lower() if ":" in href else ""
        if href.startswith("#"):
            continue
        if scheme not in ("http", "https", "mailto"):
            out.append(
                Finding(
                    "error",
                    "link.scheme",
                    f"link {href[:80]!r} is not an absolute http(s) or mailto URL",
                )
            )
            continue
        if scheme in ("http", "https"):
            keys = [k.lower() for k, _ in parse_qsl(urlsplit(href).query, keep_blank_values=True)]
            doubled = sorted({k for k in keys if k.startswith("utm_") and keys.count(k) > 1})
            if doubled:
                out.append(
                    Finding(
                        "error",
                        "link.utm-doubled",
                        f"UTM parameter(s) {', '.join(doubled)} appear twice",
                        href[:100],
                    )
                )
            if scheme == "http":
                out.append(
                    Finding("warning", "link.http", "plain http link: prefer https", href[:100])
                )
        text = _link_text(link).lower().strip(" →.:")
        label = link.aria_label.strip()
        if not text and not label:
            out.append(
                Finding(
                    "error",
                    "link.text-empty",
                    "link without text or image alt: screen readers read out the URL",
                    href[:100],
                )
            )
        elif text in VAGUE_LINK_TEXT and not label:
            out.append(
                Finding(
                    "warning",
                    "link.text-vague",
                    f"link text {_link_text(link)!r} does not say where it goes",
                    href[:100],
                )
            )
        elif re.fullmatch(r"(https?://|www\.)\S+", text) and not label:
            out.append(
                Finding("warning", "link.text-url", "a bare URL as the only link text", href[:100])
            )
    return out


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
    pre = ctx.issue.preheader
    if pre is None:
        out.append(
            Finding(
                "warning",
                "preheader.missing",
                "no preheader: inboxes show the first words of the email (often 'View this issue in your browser')",
            )
        )
    else:
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


def item_titles(issue: Issue) -> list[tuple[str, str]]:
    """(where, words) of every item that the plaintext must carry."""
    items: list[tuple[str, str]] = []
    for i, s in enumerate(issue.sections):
        base = f"sections[{i}]"
        if s.heading:
            items.append((f"{base}.heading", s.heading))
        if isinstance(s, FeaturedSection):
            items.append((f"{base}.title", s.title))
        elif isinstance(s, (StoriesSection, ReadingListSection)):
            items += [(f"{base}.items[{j}].title", it.title) for j, it in enumerate(s.items)]
        elif isinstance(s, RoundupSection):
            items += [(f"{base}.items[{j}].title", it.title) for j, it in enumerate(s.items)]
            for g, group in enumerate(s.groups):
                items += [
                    (f"{base}.groups[{g}].items[{j}].title", it.title)
                    for j, it in enumerate(group.items)
                ]
        elif isinstance(s, AnnouncementsSection):
            items += [(f"{base}.items[{j}]", it.plain) for j, it in enumerate(s.items)]
        elif isinstance(s, LinksSection):
            items += [
                (f"{base}.items[{j}]", it.title or it.text.plain) for j, it in enumerate(s.items)
            ]
    return items


def _comparable(text: str) -> str:
    """Words only: plaintext marks emphasis with * and _, the model's plain text does not."""
    return " ".join(text.replace("*", "").replace("_", "").split())


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


def check_accessibility(ctx: Context) -> list[Finding]:
    f = ctx.facts
    out = []
    if not f.lang or f.lang.lower() == "und":  # MRML writes lang="und" when the template gives none
        out.append(
            Finding(
                "error",
                "a11y.lang",
                "no language on <html> (lang missing or 'und'): screen readers guess it",
            )
        )
    if not f.title.strip():
        out.append(
            Finding(
                "warning",
                "a11y.title",
                "no <title>: shown by some clients and by browsers for the web version",
            )
        )
    levels = [level for level, _ in f.headings]
    if levels and levels[0] != 1:
        out.append(
            Finding("warning", "a11y.heading-first", f"the first heading is h{levels[0]}, not h1")
        )
    for (prev, _), (level, text) in zip(f.headings, f.headings[1:], strict=False):
        if level > prev + 1:
            out.append(
                Finding(
                    "warning",
                    "a11y.heading-skip",
                    f"heading h{level} follows h{prev}: a level is skipped",
                    text[:60],
                )
            )
    layout = [t for t in f.tables if t.get("role") != "presentation"]
    if layout:
        out.append(
            Finding(
                "warning",
                "a11y.table-role",
                f'{len(layout)} layout table(s) without role="presentation": screen readers announce them as data tables',
            )
        )
    return out


def check_dark_mode(ctx: Context) -> list[Finding]:
    f = ctx.facts
    out = []
    if not any(m.get("name") == "color-scheme" for m in f.metas):
        out.append(
            Finding(
                "warning",
                "dark.meta",
                'no <meta name="color-scheme">: Apple Mail and others force-invert the colours',
            )
        )
    styles = " ".join(f.style_blocks)
    if "prefers-color-scheme: dark" not in styles.replace(
        "prefers-color-scheme:dark", "prefers-color-scheme: dark"
    ):
        out.append(
            Finding(
                "warning",
                "dark.styles",
                "no @media (prefers-color-scheme: dark) rules: dark-mode clients decide the colours alone",
            )
        )
    return out


CONTRAST_PAIRS = (
    ("text", "surface", "body text on cards"),
    ("muted", "surface", "secondary text on cards"),
    ("primary", "surface", "links on cards"),
    ("muted", "background", "footer text"),
    ("on_accent", "accent", "masthead text"),
    ("button_text", "primary", "button text"),
    ("dark_text", "dark_surface", "dark mode: body text"),
    ("dark_muted", "dark_surface", "dark mode: secondary text"),
    ("dark_primary", "dark_surface", "dark mode: links"),
    ("dark_muted", "dark_background", "dark mode: footer text"),
)


def check_contrast(ctx: Context) -> list[Finding]:
    colours = ctx.project.brand.colors
    out = []
    for fg, bg, what in CONTRAST_PAIRS:
        ratio = contrast_ratio(getattr(colours, fg), getattr(colours, bg))
        if ratio < 4.5:
            out.append(
                Finding(
                    "error",
                    "a11y.contrast",
                    f"{what}: {fg} {getattr(colours, fg)} on {bg} {getattr(colours, bg)} has contrast {ratio:.2f}:1; WCAG AA asks 4.5:1",
                    "dispatch.yaml brand.colors",
                )
            )
    return out


def check_footer(ctx: Context) -> list[Finding]:
    out = []
    footer = ctx.project.footer
    html_text = " ".join(" ".join(ctx.facts.text_parts).split())
    if " ".join(footer.postal_address.split()) not in html_text:
        out.append(
            Finding(
                "error",
                "footer.postal-address",
                "the postal address is not in the HTML (CAN-SPAM requires it)",
            )
        )
    if " ".join(footer.postal_address.split()) not in " ".join(ctx.rendered.text.split()):
        out.append(
            Finding(
                "error",
                "footer.postal-address-text",
                "the postal address is not in the plaintext part",
            )
        )
    unsub = [
        link
        for link in ctx.facts.links
        if "unsubscribe" in (_link_text(link) + link.aria_label).lower()
    ]
    if not unsub:
        out.append(
            Finding(
                "error",
                "footer.unsubscribe",
                "no visible unsubscribe link (Gmail and Yahoo require one in bulk mail, besides the header)",
            )
        )
    if "unsubscribe" not in ctx.rendered.text.lower():
        out.append(
            Finding("error", "footer.unsubscribe-text", "no unsubscribe link in the plaintext part")
        )
    if "{token}" not in footer.unsubscribe_url:
        out.append(
            Finding(
                "error",
                "footer.one-click",
                "footer.unsubscribe_url has no {token}: one-click unsubscribe (RFC 8058) needs a URL that identifies the recipient",
            )
        )
    elif not footer.unsubscribe_url.startswith("https://"):
        out.append(
            Finding("error", "footer.one-click-https", "one-click unsubscribe needs an https URL")
        )
    return out


# ------------------------------------------------------------------ caniemail
_CSS_PROPERTY = re.compile(r"(?<![-\w])(-?[a-z][a-z-]*)\s*:", re.IGNORECASE)
_AT_RULE = re.compile(r"@([a-z-]+)", re.IGNORECASE)


def used_features(facts: _Facts) -> set[str]:
    """caniemail slugs of what the HTML uses: CSS properties, at-rules, media features, elements."""
    slugs: set[str] = set()
    css = " ".join(facts.style_blocks)
    declarations = css + " ; " + " ; ".join(facts.inline_styles)
    for block in re.findall(r"\{([^{}]*)\}", declarations) + facts.inline_styles:
        for prop in _CSS_PROPERTY.findall(block):
            slugs.add(f"css-{prop.lower()}")
        for value in re.findall(r"(?<![-\w])display\s*:\s*([a-z-]+)", block, re.IGNORECASE):
            slugs.add(
                f"css-display-{value.lower()}"
            )  # display:flex / grid / none have their own entries
    for at in _AT_RULE.findall(css):
        slugs.add(f"css-at-{at.lower()}")
    if "prefers-color-scheme" in css:
        slugs.add("css-at-media-prefers-color-scheme")
    if "!important" in declarations:
        slugs.add("css-important")
    for tag in facts.elements:
        slugs.add(f"html-{tag}")
    if any(m.get("name") == "color-scheme" for m in facts.metas):
        slugs.add("html-meta-color-scheme")
    return slugs


_BASELINE_MJML = """<mjml><mj-head><mj-preview>x</mj-preview><mj-attributes><mj-all font-family="Arial" /></mj-attributes></mj-head><mj-body>
<mj-wrapper><mj-section><mj-column><mj-text>x</mj-text><mj-button href="https://example.org">x</mj-button>
<mj-image src="https://example.org/x.png" alt="x" width="100px" href="https://example.org" /><mj-divider /></mj-column></mj-section>
</mj-wrapper></mj-body></mjml>"""


def framework_features() -> set[str]:
    """Features MJML's own cross-client boilerplate uses: not the owner's to fix, so only noted."""
    from dispatch_mail.render.mjml import mjml_to_html

    return used_features(html_facts(mjml_to_html(_BASELINE_MJML)))


def _load_caniemail() -> dict:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def check_client_support(ctx: Context) -> list[Finding]:
    data = _load_caniemail()
    names, platforms = data["clients"], data["platform_names"]
    out = []
    framework = framework_features()
    for slug in sorted(used_features(ctx.facts)):
        feature = data["features"].get(slug)
        if feature is None:
            continue
        missing = []
        for family, per_platform in feature["support"].items():
            lacking = [platforms.get(p, p) for p, v in per_platform.items() if v == "n"]
            if lacking:
                missing.append(f"{names[family]} ({', '.join(lacking)})")
        if not missing:
            continue
        level = "note" if slug in GRACEFUL_FEATURES or slug in framework else "warning"
        origin = " (in MJML's cross-client boilerplate)" if slug in framework else ""
        out.append(
            Finding(
                level,
                "clients.unsupported",
                f"{feature['title']}: not supported by {'; '.join(missing)}{origin}",
                feature["url"],
            )
        )
    return out


CHECKS = (
    check_size,
    check_images,
    check_links,
    check_subject_and_preheader,
    check_plaintext,
    check_accessibility,
    check_dark_mode,
    check_contrast,
    check_footer,
    check_client_support,
)


def check_issue(
    issue_dir: Path, *, links: bool = False, link_timeout: float = 10.0, link_concurrency: int = 8
) -> CheckReport:
    """Every offline check (and, with ``links``, that every link answers) of one issue."""
    issue_dir = Path(issue_dir)
    try:
        project, issue = load(issue_dir)
    except ContentError as exc:
        report = CheckReport(issue_dir.name, str(issue_dir))
        report.findings = [Finding("error", "manifest.invalid", str(p)) for p in exc.problems]
        return report
    rendered = render_issue(project, issue)
    ctx = Context(project, issue, rendered, html_facts(rendered.html))
    report = CheckReport(issue.slug, issue.path)
    for check in CHECKS:
        report.findings.extend(check(ctx))
    size = len(rendered.html.encode("utf-8"))
    report.stats = {
        "html_bytes": size,
        "text_bytes": len(rendered.text.encode("utf-8")),
        "links": len(ctx.facts.links),
        "images": len(ctx.facts.images),
        "sections": [
            {"section": label, "bytes": weight}
            for label, weight in section_weights(project, issue, size)
        ],
        "client_data": _load_caniemail()["source"]
        + ", data of "
        + _load_caniemail()["last_update_date"][:10],
    }
    if links:
        from dispatch_mail.quality.links import check_urls

        urls = sorted(
            {link.href for link in ctx.facts.links if link.href.startswith(("http://", "https://"))}
        )
        report.findings.extend(check_urls(urls, timeout=link_timeout, concurrency=link_concurrency))
    return report


# --------------------------------------------------------------------------- output
def format_text(reports: list[CheckReport], verbose: bool = False) -> str:
    lines = []
    for report in reports:
        lines.append(f"{report.path}:")
        if report.stats:
            s = report.stats
            lines.append(
                f"  HTML {s['html_bytes'] / 1024:.1f} KB of Gmail's {GMAIL_CLIP_BYTES // 1024} KB · text {s['text_bytes'] / 1024:.1f} KB · {s['links']} links · {s['images']} images"
            )
            heaviest = sorted(s["sections"], key=lambda x: -x["bytes"])[:5]
            lines.append(
                "  heaviest sections: "
                + ", ".join(f"{h['section']} {h['bytes'] / 1024:.1f} KB" for h in heaviest)
            )
        for level in LEVELS if verbose else LEVELS[:2]:
            for f in report.findings:
                if f.level == level:
                    lines.append(f"  {f}")
        hidden = "" if verbose or not report.count("note") else " (notes shown with --verbose)"
        lines.append(
            f"  {report.count('error')} errors, {report.count('warning')} warnings, {report.count('note')} notes{hidden}"
        )
    return "\n".join(lines)


def format_json(reports: list[CheckReport]) -> str:
    return json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False)


def format_junit(reports: list[CheckReport], strict: bool = False) -> str:
    """JUnit XML: one test suite per issue, one test case per check code; notes are not failures."""
    from xml.sax.saxutils import escape, quoteattr

    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for report in reports:
        codes = sorted({f.code for f in report.findings} | {"manifest.valid"})
        failing = [
            f for f in report.findings if f.level == "error" or (strict and f.level == "warning")
        ]
        out.append(
            f'  <testsuite name={quoteattr("dispatch check " + report.slug)} tests="{len(codes)}" failures="{len({f.code for f in failing})}">'
        )
        for code in codes:
            found = [f for f in report.findings if f.code == code]
            bad = [f for f in found if f in failing]
            out.append(f"    <testcase classname={quoteattr(report.slug)} name={quoteattr(code)}>")
            if bad:
                body = "\n".join(str(f) for f in bad)
                out.append(
                    f"      <failure message={quoteattr(bad[0].message[:200])}>{escape(body)}</failure>"
                )
            elif found:
                out.append(
                    f"      <system-out>{escape(chr(10).join(str(f) for f in found))}</system-out>"
                )
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"
