"""The checks of the HTML part: images, links, accessibility, dark mode and colour contrast."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from dispatch_mail.project.urls import url_problem
from dispatch_mail.quality.contrast import contrast_ratio
from dispatch_mail.quality.facts import Context, Link
from dispatch_mail.quality.findings import Finding

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
MIN_CONTRAST = 4.5  # WCAG AA for body text
CONTRAST_PAIRS = (
    ("text", "surface", "body text (and images' alt text) on cards"),
    ("muted", "surface", "secondary text on cards"),
    ("primary", "surface", "links on cards"),
    ("muted", "background", "footer text"),
    ("on_accent", "accent", "masthead text"),
    ("button_text", "primary", "button text"),
    ("dark_text", "dark_surface", "dark mode: body text (and images' alt text)"),
    ("dark_muted", "dark_surface", "dark mode: secondary text"),
    ("dark_primary", "dark_surface", "dark mode: links"),
    ("dark_muted", "dark_background", "dark mode: footer text"),
)


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
                    "image without alt text: with images off (the default in many clients) "
                    "it says nothing",
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


def _tracking_findings(href: str) -> list[Finding]:
    """Doubled UTM parameters (they break the analytics) and plain http."""
    out: list[Finding] = []
    scheme = urlsplit(href).scheme
    if scheme not in ("http", "https"):
        return out
    keys = [k.lower() for k, _ in parse_qsl(urlsplit(href).query, keep_blank_values=True)]
    doubled = sorted({k for k in keys if k.startswith("utm_") and keys.count(k) > 1})
    if doubled:
        out.append(
            Finding(
                "error",
                "link.utm-doubled",
                f"UTM parameters {', '.join(doubled)} appear twice"
                if len(doubled) > 1
                else f"UTM parameter {doubled[0]} appears twice",
                href[:100],
            )
        )
    if scheme == "http":
        out.append(Finding("warning", "link.http", "plain http link: prefer https", href[:100]))
    return out


def _link_text_findings(link: Link, href: str) -> list[Finding]:
    """Text that tells a reader, and a screen reader, where the link goes."""
    text = link.visible_text.lower().strip(" →.:")
    if link.aria_label.strip():
        return []
    if not text:
        return [
            Finding(
                "error",
                "link.text-empty",
                "link without text or image alt: screen readers read out the URL",
                href[:100],
            )
        ]
    if text in VAGUE_LINK_TEXT:
        return [
            Finding(
                "warning",
                "link.text-vague",
                f"link text {link.visible_text!r} does not say where it goes",
                href[:100],
            )
        ]
    if re.fullmatch(r"(https?://|www\.)\S+", text):
        return [Finding("warning", "link.text-url", "a bare URL as the only link text", href[:100])]
    return []


def check_link_urls_and_text(ctx: Context) -> list[Finding]:
    """Every link: a URL the project's link rule allows, clean tracking, and telling text."""
    out = []
    for link in ctx.facts.links:
        href = link.href.strip()
        if href.startswith("#"):
            continue  # a jump within the email
        if url_problem(href) is not None:
            out.append(
                Finding(
                    "error",
                    "link.scheme",
                    f"link {href[:80]!r} is not an absolute http(s) or mailto URL",
                )
            )
            continue
        out += _tracking_findings(href)
        out += _link_text_findings(link, href)
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
    # a Markdown table is data: its header cells say so, and screen readers should announce it
    layout = [
        t
        for t in f.tables
        if t.get("role") != "presentation" and "md-table" not in t.get("class", "").split()
    ]
    if layout:
        out.append(
            Finding(
                "warning",
                "a11y.table-role",
                f'{len(layout)} layout table(s) without role="presentation": '
                "screen readers announce them as data tables",
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
    styles = " ".join(f.style_blocks).replace(
        "prefers-color-scheme:dark", "prefers-color-scheme: dark"
    )
    if "prefers-color-scheme: dark" not in styles:
        out.append(
            Finding(
                "warning",
                "dark.styles",
                "no @media (prefers-color-scheme: dark) rules: "
                "dark-mode clients decide the colours alone",
            )
        )
    return out


def check_contrast(ctx: Context) -> list[Finding]:
    colours = ctx.project.brand.colors
    out = []
    for fg, bg, what in CONTRAST_PAIRS:
        fg_colour, bg_colour = getattr(colours, fg), getattr(colours, bg)
        ratio = contrast_ratio(fg_colour, bg_colour)
        if ratio < MIN_CONTRAST:
            out.append(
                Finding(
                    "error",
                    "a11y.contrast",
                    f"{what}: {fg} {fg_colour} on {bg} {bg_colour} has contrast {ratio:.2f}:1; "
                    "WCAG AA asks 4.5:1",
                    "dispatch.yaml brand.colors",
                )
            )
    return out
