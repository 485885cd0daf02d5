"""The confirmation page in a real headless Chromium: accessible, self-contained, and it works.

A person opens the unsubscribe link, sees a page with a heading and a labelled
button, presses it, sees the done page, and can undo. The page must load with no
console error (nothing blocked by its Content-Security-Policy, nothing fetched)
and read at 320 px. Skips without Chromium or playwright, except under CI=true,
where it fails (the convention of tests/test_screenshot.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import chromium as chromium  # noqa: E402,F401 (fixture)
from tests.helpers.serve import Served, start_serve
from tests.test_endpoint import seal, suppressions, write_project


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    running = start_serve(write_project(tmp_path / "news"))
    yield running
    assert running.stop() == 0, running.output


def test_a_person_unsubscribes_on_the_page_and_undoes_it(chromium, served: Served):
    email = "reader@example.com"
    page = chromium.new_page(viewport={"width": 320, "height": 640})  # type: ignore[attr-defined]
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if message.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    base = f"http://127.0.0.1:{served.port}"
    page.goto(f"{base}/unsubscribe/{seal(email)}")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Unsubscribe from Test News?"
    button = page.get_by_role("button", name="Unsubscribe")
    assert button.is_visible()
    # readable at 320 px: nothing wider than the window, so no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    assert suppressions(served.root, email) == []  # opening the page changed nothing

    button.click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    assert [(s.reason, s.source) for s in suppressions(served.root, email)] == [
        ("unsubscribed", "confirmation-page")
    ]

    page.get_by_role("button", name="Resubscribe").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "You are subscribed again"
    assert suppressions(served.root, email) == []

    assert problems == []
    assert all(url.startswith(base + "/unsubscribe/") for url in requested), requested
