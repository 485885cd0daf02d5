"""Screenshots and layout checks of a rendered issue in a real headless Chromium.

`dispatch check` reads the HTML; this module asks a browser what a reader sees:
the page at desktop and phone width and in dark mode, whether a narrow phone
scrolls sideways, and whether dark-mode text is readable on its background.

The browser is the machine's own Chromium (Debian's /usr/bin/chromium, or
--chromium / $DISPATCH_CHROMIUM), driven by Playwright; no browser is ever
downloaded. The page makes no request: the HTML is handed to the browser
through a route, every other request (images, fonts, trackers) is aborted so
images show their alt text, JavaScript is off as in a mail client, and the host
resolver answers nothing in case a request slips past the route.
Playwright is imported lazily: it is slow to import and only these commands need it.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from dispatch_mail.errors import BrowserUnavailable, ChromiumMissing, DispatchError, PlaywrightMissing, ScreenshotError, UsageError
from dispatch_mail.project.files import atomic_write

# name -> (viewport width in CSS px, colour scheme); device scale 1, so PNG width == viewport width
SHOTS: dict[str, tuple[int, str]] = {
    "desktop": (800, "light"),
    "mobile": (375, "light"),
    "dark": (600, "dark"),
}
LAYOUT_WIDTHS = (320, 375)  # the narrowest phones still in use, and the common one
CONTRAST_WIDTH = 375
MIN_CONTRAST = 4.5  # WCAG AA for body text
VIEWPORT_HEIGHT = 900
PAGE_URL = (
    "http://dispatch.invalid/email.html"  # served from memory by the route; .invalid never resolves
)
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--dns-prefetch-disable",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
PATH_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = (
    "install it (Debian/Ubuntu: apt-get install chromium) or name it with --chromium PATH "
    "or DISPATCH_CHROMIUM; dispatch never downloads a browser"
)






# --------------------------------------------------------------------------- finding the browser
def _executable(candidate: str) -> str | None:
    if os.sep in candidate or (os.altsep and os.altsep in candidate):
        path = Path(candidate).expanduser()
        return str(path.resolve()) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(candidate)


def find_chromium(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The Chromium to use, or None.

    An explicit choice (the argument, else $DISPATCH_CHROMIUM) is the only
    candidate when given: quietly using another browser than the one named
    would hide a typo. Otherwise /usr/bin/chromium, then the usual names on PATH.
    """
    chosen = os.fspath(explicit) if explicit else os.environ.get("DISPATCH_CHROMIUM", "")
    if chosen:
        return _executable(chosen)
    for candidate in (DEFAULT_CHROMIUM, *PATH_NAMES):
        found = _executable(candidate)
        if found:
            return found
    return None


def require_chromium(explicit: str | os.PathLike[str] | None = None) -> str:
    """Like :func:`find_chromium`, but a clear error instead of None."""
    found = find_chromium(explicit)
    if found:
        return found
    if explicit:
        raise ChromiumMissing(
            f"Chromium not found at {os.fspath(explicit)!r} (--chromium or DISPATCH_CHROMIUM): {INSTALL_HINT}"
        )
    if os.environ.get("DISPATCH_CHROMIUM"):
        raise ChromiumMissing(
            f"Chromium not found at DISPATCH_CHROMIUM={os.environ['DISPATCH_CHROMIUM']!r}: {INSTALL_HINT}"
        )
    raise ChromiumMissing(
        f"Chromium not found ({DEFAULT_CHROMIUM}, or {', '.join(PATH_NAMES)} on PATH): {INSTALL_HINT}"
    )


def require_playwright() -> None:
    try:
        found = importlib.util.find_spec("playwright") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None, i.e. blocked on purpose
        found = False
    if not found:
        raise PlaywrightMissing(
            "the playwright package is not installed: pip install playwright "
            "(no 'playwright install' needed: dispatch drives the machine's Chromium)"
        )


def browser_unavailable_reason(chromium: str | os.PathLike[str] | None = None) -> str | None:
    """Why screenshots cannot be taken here, or None when they can (without starting a browser)."""
    try:
        require_playwright()
        require_chromium(chromium)
    except BrowserUnavailable as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------- the browser
class _Driver(threading.local):
    """Playwright's driver process, shared by the sessions of a thread.

    The sync API allows one driver per thread at a time, so a session opened
    while another is open (a library user's, a test fixture's) borrows it.
    """

    def __init__(self) -> None:
        self.manager: Any = None
        self.playwright: Any = None
        self.users = 0

    def acquire(self) -> Any:
        if self.users == 0:
            from playwright.sync_api import Error, sync_playwright

            manager = sync_playwright()
            try:
                self.playwright = manager.start()
            except Error as exc:  # e.g. called from inside a running asyncio loop
                raise ScreenshotError(f"could not start Playwright: {_first_line(exc)}") from exc
            self.manager = manager
        self.users += 1
        return self.playwright

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            manager, self.manager, self.playwright = self.manager, None, None
            manager.__exit__(None, None, None)


_driver = _Driver()


def _first_line(exc: Exception) -> str:
    # Playwright's messages carry a call log after the first line; the first line says what went wrong.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _launch_failure(exc: Exception) -> str:
    """What the browser itself printed and its exit code, from Playwright's launch log."""
    text = str(exc)
    said = list(dict.fromkeys(re.findall(r"\[pid=\d+\]\[err\] (.+)", text)))[:3]
    code = re.search(r"exitCode=(-?\d+)", text)
    parts = ([f"exit code {code.group(1)}"] if code else []) + said
    return "; ".join(parts) or _first_line(exc)


class ChromiumSession:
    """One running headless Chromium, reused for many pages (a launch costs far more than a page).

    Use as a context manager; :func:`take_screenshots` and :func:`layout_report`
    accept an open session as ``browser=`` or start their own.
    """

    def __init__(self, chromium: str | os.PathLike[str] | None = None) -> None:
        self.requested = chromium
        self.executable: str | None = None
        self._browser: Any = None
        self.blocked: list[str] = []  # every request a page tried and was refused, in order

    def __enter__(self) -> Self:
        require_playwright()
        self.executable = require_chromium(self.requested)
        from playwright.sync_api import Error

        playwright = _driver.acquire()
        try:
            self._browser = playwright.chromium.launch(
                executable_path=self.executable, headless=True, args=LAUNCH_ARGS
            )
        except Error as exc:
            _driver.release()
            raise BrowserUnavailable(
                f"Chromium at {self.executable} did not start: {_launch_failure(exc)}"
            ) from exc
        except BaseException:
            _driver.release()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            self._browser = None
            _driver.release()

    @property
    def version(self) -> str:
        return self._browser.version if self._browser is not None else ""

    @contextmanager
    def page(self, html: str) -> Iterator[PageView]:
        """``html`` loaded once, offline, in a page whose width and colour scheme can then be changed."""
        if self._browser is None:
            raise RuntimeError("ChromiumSession used outside its 'with' block")
        from playwright.sync_api import Error

        context = self._browser.new_context(
            viewport={"width": SHOTS["desktop"][0], "height": VIEWPORT_HEIGHT},
            device_scale_factor=1,
            color_scheme="light",
            java_script_enabled=False,  # mail clients run none; evaluate() still works
            service_workers="block",
        )
        try:
            body = html.encode("utf-8")

            def serve(route: Any) -> None:
                if route.request.url == PAGE_URL:
                    route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)
                else:
                    self.blocked.append(route.request.url)
                    route.abort("blockedbyclient")

            context.route("**/*", serve)
            page = context.new_page()
            try:
                page.goto(PAGE_URL, wait_until="load", timeout=30_000)
            except Error as exc:
                raise ScreenshotError(
                    f"Chromium could not load the issue: {_first_line(exc)}"
                ) from exc
            try:
                yield PageView(page)
            except Error as exc:  # a crashed tab or a timeout while measuring or capturing
                raise ScreenshotError(f"Chromium failed on the issue: {_first_line(exc)}") from exc
        finally:
            context.close()

    def screenshots(self, html: str, out_dir: Path) -> dict[str, Path]:
        out_dir = Path(out_dir)
        written: dict[str, Path] = {}
        with self.page(html) as view:
            for name, (width, scheme) in SHOTS.items():
                view.show(width, scheme)
                path = out_dir / f"{name}.png"
                atomic_write(path, view.screenshot())
                written[name] = path
        return written

    def layout_report(self, html: str) -> dict[str, Any]:
        report: dict[str, Any] = {"widths": {}, "images": {}, "contrast": {}}
        with self.page(html) as view:
            for width in LAYOUT_WIDTHS:
                view.show(width, "light")
                report["widths"][width] = view.evaluate(_OVERFLOW_JS)
            view.show(CONTRAST_WIDTH, "light")
            report["images"] = view.evaluate(_IMAGES_JS)
            report["contrast"]["light"] = view.evaluate(_CONTRAST_JS, MIN_CONTRAST)
            view.show(CONTRAST_WIDTH, "dark")
            report["contrast"]["dark"] = view.evaluate(_CONTRAST_JS, MIN_CONTRAST)
        report["horizontal_scroll"] = [
            w for w, r in report["widths"].items() if r["horizontal_scroll"]
        ]
        report["dark_min_contrast"] = report["contrast"]["dark"]["min_ratio"]
        report["ok"] = (
            not report["horizontal_scroll"]
            and not report["images"]["missing_alt"]
            and (report["dark_min_contrast"] or 0) >= MIN_CONTRAST
        )
        return report


class PageView:
    """The loaded page; resizing and switching the colour scheme re-lays it out without reloading."""

    def __init__(self, page: Any) -> None:
        self._page = page

    def show(self, width: int, scheme: str) -> None:
        self._page.set_viewport_size({"width": width, "height": VIEWPORT_HEIGHT})
        self._page.emulate_media(color_scheme=scheme)

    def screenshot(self) -> bytes:
        return self._page.screenshot(full_page=True, type="png", animations="disabled")

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self._page.evaluate(script, arg)


def take_screenshots(
    html: str, out_dir: Path, chromium: str | None = None, *, browser: ChromiumSession | None = None
) -> dict[str, Path]:
    """Write desktop.png (800 px), mobile.png (375 px) and dark.png (600 px, dark scheme), full page.

    Each file is written to a temporary name and renamed, so a reader never
    sees half a PNG. Returns ``{"desktop": path, "mobile": path, "dark": path}``.
    """
    if browser is not None:
        return browser.screenshots(html, out_dir)
    with ChromiumSession(chromium) as session:
        return session.screenshots(html, out_dir)


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
    blending the translucent ones on the way, with the minimum as ``min_ratio``.
    """
    if browser is not None:
        return browser.layout_report(html)
    with ChromiumSession(chromium) as session:
        return session.layout_report(html)


def format_layout(report: dict[str, Any]) -> list[str]:
    """The report as short lines for logs and the previews gallery."""
    lines = []
    for width, r in report["widths"].items():
        if r["horizontal_scroll"]:
            culprits = ", ".join(e["element"] for e in r["overflowing"][:3])
            lines.append(
                f"scrolls sideways at {width} px (content {r['scroll_width']} px wide{': ' + culprits if culprits else ''})"
            )
    missing = report["images"]["missing_alt"]
    if missing:
        lines.append(f"{len(missing)} image(s) without alt text: {', '.join(missing[:3])}")
    for scheme in ("light", "dark"):
        c = report["contrast"][scheme]
        if c["min_ratio"] is not None and c["min_ratio"] < MIN_CONTRAST:
            worst = c["worst"][0]
            lines.append(
                f"{scheme} mode: text contrast {c['min_ratio']:.2f}:1 < {MIN_CONTRAST}:1 "
                f"({worst['element']} {worst['color']} on {worst['background']}: {worst['text']!r})"
            )
    if not lines:
        dark = report["contrast"]["dark"]["min_ratio"]
        shown = (
            f"{math.floor(dark * 10) / 10:.1f}:1" if dark is not None else "n/a"
        )  # floor: never claim more
        count = report["images"]["count"]
        images = (
            "no images"
            if not count
            else f"{count} image{'s' if count != 1 else ''}, all with alt text"
        )
        lines.append(
            f"no sideways scrolling at {'/'.join(str(w) for w in report['widths'])} px · "
            f"{images} · dark-mode text contrast ≥ {shown}"
        )
    return lines


# --------------------------------------------------------------------------- in-page measurements
_DESCRIBE_JS = """
const describe = (el) => {
  let s = el.tagName.toLowerCase();
  if (el.id) s += '#' + el.id;
  const cls = (el.getAttribute('class') || '').trim().split(/\\s+/).filter(Boolean).slice(0, 2);
  if (cls.length) s += '.' + cls.join('.');
  return s;
};
"""

_OVERFLOW_JS = (
    "() => {"
    + _DESCRIBE_JS
    + """
  const root = document.documentElement;
  const viewport = root.clientWidth;
  const overflowing = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > viewport + 0.5 && !(el.parentElement && el.parentElement.getBoundingClientRect().right > viewport + 0.5)) {
      overflowing.push({element: describe(el), right: Math.round(r.right)});
      if (overflowing.length >= 10) break;
    }
  }
  return {viewport: viewport, scroll_width: root.scrollWidth,
          horizontal_scroll: root.scrollWidth > viewport, overflowing: overflowing};
}"""
)

_IMAGES_JS = """() => {
  const imgs = [...document.images];
  const name = (img) => (img.getAttribute('src') || '').slice(0, 120);
  return {count: imgs.length,
          missing_alt: imgs.filter(i => !i.hasAttribute('alt')).map(name),
          empty_alt: imgs.filter(i => i.hasAttribute('alt') && !i.getAttribute('alt').trim()).map(name)};
}"""

# Main text: what the reader reads. Each element counts only if it paints text of its own.
_CONTRAST_JS = (
    "(minimum) => {"
    + _DESCRIBE_JS
    + """
  const SELECTOR = '.dm-text, .dm-text p, .dm-text li, .dm-text h1, .dm-text h2, .dm-text h3, .dm-text h4, h1, h2, h3';
  const parse = (value) => {
    const m = /^rgba?\\(([^)]*)\\)$/.exec(value.trim());
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat);
    return p.length >= 3 ? [p[0], p[1], p[2], p.length > 3 ? p[3] : 1] : null;
  };
  const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const hex = (c) => '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('');
  // The canvas behind everything: 'Canvas' resolves per the page's used colour scheme.
  const probe = document.createElement('div');
  probe.style.backgroundColor = 'Canvas';
  document.body.appendChild(probe);
  const canvas = parse(getComputedStyle(probe).backgroundColor) || [255, 255, 255, 1];
  probe.remove();
  const background = (el) => {
    const layers = [];
    let image = false;
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.backgroundImage && style.backgroundImage !== 'none') image = true;
      const bg = parse(style.backgroundColor);
      if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
    }
    let colour = [canvas[0], canvas[1], canvas[2], 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return {colour: colour, image: image};
  };
  const hidden = (el) => {
    if (!el.getClientRects().length) return true;
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.visibility === 'hidden' || parseFloat(style.opacity) === 0) return true;
    }
    return false;
  };
  const results = [];
  let uncertain = 0;
  for (const el of new Set(document.querySelectorAll(SELECTOR))) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').replace(/\\s+/g, ' ').trim();
    if (!own || hidden(el)) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color);
    const bg = background(el);
    if (!fg) { uncertain++; continue; }
    if (bg.image) { uncertain++; continue; }  // text over a picture: no single background colour to measure
    const colour = fg[3] < 1 ? over(fg, bg.colour) : fg;
    const size = parseFloat(style.fontSize);
    const bold = parseInt(style.fontWeight, 10) >= 700;
    results.push({element: describe(el), text: own.slice(0, 60), color: hex(colour), background: hex(bg.colour),
                  ratio: Math.round(ratio(colour, bg.colour) * 100) / 100,
                  large: size >= 24 || (bold && size >= 18.66)});
  }
  results.sort((a, b) => a.ratio - b.ratio);
  return {checked: results.length, uncertain: uncertain, minimum: minimum,
          min_ratio: results.length ? results[0].ratio : null,
          below: results.filter(r => r.ratio < minimum).length,
          canvas: hex(canvas), worst: results.slice(0, 5)};
}"""
)
