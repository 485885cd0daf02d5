"""Render the README's pictures of the Q1 2026 issue (desktop and phone) in headless Chromium.

Usage: dispatch build issues/2026-q1 && python scripts/readme_screenshots.py
Needs Debian's chromium (or CHROMIUM=/path) and the playwright package; downloads no browser.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from dispatch_mail.browser.chromium import LAUNCH_ARGS

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    html = ROOT / "build" / "2026-q1" / "email.html"
    if not html.is_file():
        print("build the issue first: dispatch build issues/2026-q1", file=sys.stderr)
        return 1
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=LAUNCH_ARGS
        )
        for name, width in (("desktop", 720), ("mobile", 375)):
            page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
            page.route(
                "**/*",
                lambda route: (
                    route.abort()
                    if not route.request.url.startswith("file:")
                    else route.continue_()
                ),
            )
            page.goto(html.as_uri())
            out = ROOT / "docs" / f"q1-2026-{name}.png"
            page.screenshot(path=str(out), full_page=True)
            print(f"wrote {out.relative_to(ROOT)}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
