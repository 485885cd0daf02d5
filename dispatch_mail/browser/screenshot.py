"""Screenshots and layout checks of a rendered issue in a real headless Chromium.

`dispatch check` reads the HTML; this module asks a browser what a reader sees:
the page at desktop and phone width and in dark mode, whether a narrow phone
scrolls sideways, whether dark-mode text is readable on its background, and
whether any character was drawn as an empty box for want of a font (``fonts``).
The browser, and how it is kept offline, is ``chromium``'s business; the
measurements run in the page are ``assets/layout.js``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dispatch_mail.browser.chromium import ChromiumSession, PageView
from dispatch_mail.browser.fonts import MissingGlyphs, missing_glyphs
from dispatch_mail.browser.static import asset_text
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.wording import plural

# name -> (viewport width in CSS px, colour scheme); device scale 1, so PNG width == viewport width
SHOTS: dict[str, tuple[int, str]] = {
    "desktop": (800, "light"),
    "mobile": (375, "light"),
    "dark": (600, "dark"),
}
LAYOUT_WIDTHS = (320, 375)  # the narrowest phones still in use, and the common one
CONTRAST_WIDTH = 375
MIN_CONTRAST = 4.5  # WCAG AA for body text


class Screenshots(Mapping[str, Path]):
    """The PNGs written, by shot name, and what each shot drew as boxes for want of a font."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}
        self.missing_glyphs: dict[str, list[MissingGlyphs]] = {}

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def font_warnings(self) -> list[str]:
        """One line per script lacking a font; shots that lacked the same are named together."""
        shots: dict[str, list[str]] = {}
        for name, missing in self.missing_glyphs.items():
            for glyphs in missing:
                shots.setdefault(glyphs.describe(), []).append(name)
        return [f"screenshot {', '.join(names)}: {line}" for line, names in shots.items()]


def take_screenshots(
    html: str, out_dir: Path, chromium: str | None = None, *, browser: ChromiumSession | None = None
) -> Screenshots:
    """Write desktop.png (800 px), mobile.png (375 px) and dark.png (600 px, dark), full page.

    Each file is written to a temporary name and renamed, so a reader never
    sees half a PNG. Returns a mapping ``{"desktop": path, "mobile": path,
    "dark": path}`` whose ``missing_glyphs`` say, per shot, which characters
    no installed font had (drawn as boxes); ``font_warnings()`` says it in words.
    """
    if browser is not None:
        return _screenshots(browser, html, Path(out_dir))
    with ChromiumSession(chromium) as session:
        return _screenshots(session, html, Path(out_dir))


def layout_report(
    html: str, chromium: str | None = None, *, browser: ChromiumSession | None = None
) -> dict[str, Any]:
    """What a reader's browser makes of the layout.

    ``widths[320|375]``: document scrollWidth against the viewport, and the
    elements that stick out; ``images``: images without an alt attribute (and
    with an empty one, which marks them decorative); ``contrast[light|dark]``:
    the WCAG ratio of every visible piece of main text (``.dm-text`` and its
    paragraphs, list items and headings, h1–h3) against its effective
    background, found by walking up to the first opaque background-color and
    blending the translucent ones on the way, with the minimum as ``min_ratio``;
    ``fonts.missing``: per script, the characters no installed font had, which
    Chromium drew as empty boxes (see ``fonts.missing_glyphs``).
    """
    if browser is not None:
        return _layout_report(browser, html)
    with ChromiumSession(chromium) as session:
        return _layout_report(session, html)


def _screenshots(session: ChromiumSession, html: str, out_dir: Path) -> Screenshots:
    written = Screenshots()
    with session.page(html) as view:
        for name, (width, scheme) in SHOTS.items():
            view.show(width, scheme)
            path = out_dir / f"{name}.png"
            atomic_write(path, view.screenshot())
            written.paths[name] = path
            written.missing_glyphs[name] = missing_glyphs(view)
    return written


def _measure(view: PageView, probe: str) -> dict[str, Any]:
    result: dict[str, Any] = view.evaluate(
        asset_text("layout.js"), {"probe": probe, "minimum": MIN_CONTRAST}
    )
    return result


def _layout_report(session: ChromiumSession, html: str) -> dict[str, Any]:
    report: dict[str, Any] = {"widths": {}, "images": {}, "contrast": {}}
    with session.page(html) as view:
        for width in LAYOUT_WIDTHS:
            view.show(width, "light")
            report["widths"][width] = _measure(view, "overflow")
        view.show(CONTRAST_WIDTH, "light")
        report["images"] = _measure(view, "images")
        report["contrast"]["light"] = _measure(view, "contrast")
        report["fonts"] = {"missing": [m.as_json() for m in missing_glyphs(view)]}
        view.show(CONTRAST_WIDTH, "dark")
        report["contrast"]["dark"] = _measure(view, "contrast")
    report["horizontal_scroll"] = [w for w, r in report["widths"].items() if r["horizontal_scroll"]]
    report["dark_min_contrast"] = report["contrast"]["dark"]["min_ratio"]
    report["ok"] = (
        not report["horizontal_scroll"]
        and not report["images"]["missing_alt"]
        and (report["dark_min_contrast"] or 0) >= MIN_CONTRAST
        and not report["fonts"]["missing"]
    )
    return report


def format_layout(report: dict[str, Any]) -> list[str]:
    """The report as short lines for logs and the previews gallery."""
    lines = []
    for width, r in report["widths"].items():
        if r["horizontal_scroll"]:
            culprits = ", ".join(e["element"] for e in r["overflowing"][:3])
            lines.append(
                f"scrolls sideways at {width} px (content {r['scroll_width']} px wide"
                f"{': ' + culprits if culprits else ''})"
            )
    missing = report["images"]["missing_alt"]
    if missing:
        lines.append(f"{plural(len(missing), 'image')} without alt text: {', '.join(missing[:3])}")
    for scheme in ("light", "dark"):
        c = report["contrast"][scheme]
        if c["min_ratio"] is not None and c["min_ratio"] < MIN_CONTRAST:
            worst = c["worst"][0]
            lines.append(
                f"{scheme} mode: text contrast {c['min_ratio']:.2f}:1 < {MIN_CONTRAST}:1 "
                f"({worst['element']} {worst['color']} on {worst['background']}: {worst['text']!r})"
            )
    for missing in report.get("fonts", {}).get("missing", []):
        glyphs = MissingGlyphs(
            missing["script"], missing["package"], missing["count"], missing["chars"]
        )
        lines.append(glyphs.describe())
    if not lines:
        dark = report["contrast"]["dark"]["min_ratio"]
        # floor: never claim more contrast than was measured
        shown = f"{math.floor(dark * 10) / 10:.1f}:1" if dark is not None else "n/a"
        count = report["images"]["count"]
        images = (
            "no images"
            if not count
            else f"{count} image{'s' if count != 1 else ''}, all with alt text"
        )
        lines.append(
            f"no sideways scrolling at {'/'.join(str(w) for w in report['widths'])} px · "
            f"{images} · dark-mode text contrast ≥ {shown} · every character had a font"
        )
    return lines
