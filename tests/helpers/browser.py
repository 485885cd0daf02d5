"""Headless Chromium for the endpoint's browser tests: skipped without it, except under CI=true."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture
def chromium() -> Iterator[object]:
    from dispatch_mail.browser.chromium import browser_unavailable_reason, find_chromium

    reason = browser_unavailable_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the browser tests must run, not skip: {reason}")
        pytest.skip(f"no browser: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
