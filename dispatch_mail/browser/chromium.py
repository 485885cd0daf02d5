"""The machine's own headless Chromium, found, launched and driven by Playwright.

The browser is Debian's /usr/bin/chromium or one named by the caller or
$DISPATCH_CHROMIUM; no browser is ever downloaded. A page makes no request: the
HTML is handed to the browser through a route, every other request (images,
fonts, trackers) is aborted so images show their alt text, JavaScript is off as
in a mail client, and the host resolver answers nothing in case a request slips
past the route. Playwright is imported lazily: it is slow to import and only the
screenshot commands need it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from dispatch_mail.errors import (
    BrowserUnavailable,
    ChromiumMissing,
    PlaywrightMissing,
    ScreenshotError,
)

DEFAULT_WIDTH = 800  # CSS px; a page opens at this width until it is shown at another
VIEWPORT_HEIGHT = 900
PAGE_URL = "http://dispatch.invalid/email.html"  # served from memory; .invalid never resolves
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
    "install it (Debian/Ubuntu: apt-get install chromium) or name the one to use; "
    "dispatch never downloads a browser"
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
        where = f"at {os.fspath(explicit)!r}"
    elif os.environ.get("DISPATCH_CHROMIUM"):
        where = f"at DISPATCH_CHROMIUM={os.environ['DISPATCH_CHROMIUM']!r}"
    else:
        where = f"({DEFAULT_CHROMIUM}, or {', '.join(PATH_NAMES)} on PATH)"
    raise ChromiumMissing(f"Chromium not found {where}: {INSTALL_HINT}", hint="chromium")


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
    # Playwright's messages carry a call log after the first line, which says what went wrong.
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

    Use as a context manager; the functions of ``screenshot`` accept an open
    session as ``browser=`` or start their own.
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
        return str(self._browser.version) if self._browser is not None else ""

    @contextmanager
    def page(self, html: str) -> Iterator[PageView]:
        """``html`` loaded once, offline, in a page whose width and colour scheme can change."""
        if self._browser is None:
            raise RuntimeError("ChromiumSession used outside its 'with' block")
        from playwright.sync_api import Error

        context = self._browser.new_context(
            viewport={"width": DEFAULT_WIDTH, "height": VIEWPORT_HEIGHT},
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


class PageView:
    """The loaded page; a new width or colour scheme re-lays it out without reloading."""

    def __init__(self, page: Any) -> None:
        self._page = page
        self._devtools: Any = None

    def show(self, width: int, scheme: str) -> None:
        self._page.set_viewport_size({"width": width, "height": VIEWPORT_HEIGHT})
        self._page.emulate_media(color_scheme=scheme)

    def screenshot(self) -> bytes:
        png: bytes = self._page.screenshot(full_page=True, type="png", animations="disabled")
        return png

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self._page.evaluate(script, arg)

    def devtools(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """One Chrome DevTools Protocol call: what Chromium did, which the page cannot tell.

        (The fonts it drew each element's text with, for one.)
        """
        if self._devtools is None:
            self._devtools = self._page.context.new_cdp_session(self._page)
        return self._devtools.send(method, params or {})
