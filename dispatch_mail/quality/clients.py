"""Email client support: which features the HTML uses and which clients lack them.

The support data is caniemail.com's, shipped in quality/data so the check needs
no network. A feature MJML's own boilerplate uses, or one the theme only adds as
an enhancement, is noted, not warned about: the owner has nothing to fix there.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import TypedDict

from dispatch_mail.quality.facts import HtmlFacts, html_facts
from dispatch_mail.quality.findings import Finding, Level
from dispatch_mail.render.mjml import mjml_to_html

DATA_FILE = Path(__file__).resolve().parent / "data" / "caniemail.json"

# Progressive enhancements of the theme: clients that lack them still show a readable email.
GRACEFUL_FEATURES = frozenset(
    {
        "css-border-radius",
        # code blocks and tables: without them a long line widens its box, nothing is lost
        "css-overflow",
        "css-overflow-wrap",
        "css-white-space",
        "css-word-break",
        "css-word-wrap",
        "css-direction",
        "css-table-layout",  # fixed column tables: without it, a wide table widens the email
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
)


class Feature(TypedDict):
    title: str
    url: str
    support: dict[str, dict[str, str]]  # client family -> platform -> "y" | "n" | "a" …


class ClientData(TypedDict):
    source: str
    last_update_date: str
    clients: dict[str, str]  # family slug -> name
    platform_names: dict[str, str]
    features: dict[str, Feature]


@functools.cache
def client_data() -> ClientData:
    data: ClientData = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return data


def client_data_source() -> str:
    """Where the support data comes from and how old it is, for the report's figures."""
    data = client_data()
    return f"{data['source']}, data of {data['last_update_date'][:10]}"


_CSS_PROPERTY = re.compile(r"(?<![-\w])(-?[a-z][a-z-]*)\s*:", re.IGNORECASE)
_AT_RULE = re.compile(r"@([a-z-]+)", re.IGNORECASE)
_DISPLAY_VALUE = re.compile(r"(?<![-\w])display\s*:\s*([a-z-]+)", re.IGNORECASE)


def used_features(facts: HtmlFacts) -> set[str]:
    """caniemail slugs of what the HTML uses: CSS properties, at-rules, media features, elements."""
    slugs: set[str] = set()
    css = " ".join(facts.style_blocks)
    declarations = css + " ; " + " ; ".join(facts.inline_styles)
    for block in re.findall(r"\{([^{}]*)\}", declarations) + facts.inline_styles:
        for prop in _CSS_PROPERTY.findall(block):
            slugs.add(f"css-{prop.lower()}")
        for value in _DISPLAY_VALUE.findall(block):  # display:flex / grid / none have entries
            slugs.add(f"css-display-{value.lower()}")
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


_BASELINE_MJML = """\
<mjml><mj-head><mj-preview>x</mj-preview>\
<mj-attributes><mj-all font-family="Arial" /></mj-attributes></mj-head><mj-body>
<mj-wrapper><mj-section><mj-column><mj-text>x</mj-text>\
<mj-button href="https://example.org">x</mj-button>
<mj-image src="https://example.org/x.png" alt="x" width="100px" href="https://example.org" />\
<mj-divider /></mj-column></mj-section>
</mj-wrapper></mj-body></mjml>"""


@functools.cache
def framework_features() -> frozenset[str]:
    """Features MJML's own cross-client boilerplate uses: not the owner's to fix, so only noted."""
    return frozenset(used_features(html_facts(mjml_to_html(_BASELINE_MJML))))


def client_findings(facts: HtmlFacts) -> list[Finding]:
    """One finding per used feature that some client lacks, sorted by feature."""
    data = client_data()
    names, platforms = data["clients"], data["platform_names"]
    framework = framework_features()
    out = []
    for slug in sorted(used_features(facts)):
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
        level: Level = "note" if slug in GRACEFUL_FEATURES or slug in framework else "warning"
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
