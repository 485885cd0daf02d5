"""`dispatch preview` of several issues: an index at /, each issue at /<slug>/ with a switcher,
each rebuilt and reloaded on its own; in a real server, with a real HTTP client and Chromium."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dispatch_mail.browser.server import PreviewServer
from dispatch_mail.errors import UsageError
from tests.helpers.browser import chromium as chromium  # noqa: F401 (fixture)
from tests.helpers.project import ISSUE_YAML, create_project

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0
SLUGS = ("2026-01", "2026-02", "odd name")


@pytest.fixture
def issues(tmp_path: Path) -> list[Path]:
    create_project(
        tmp_path,
        issues={slug: ISSUE_YAML.replace("Test issue", f"Subject {slug}") for slug in SLUGS},
    )
    return [tmp_path / "issues" / slug for slug in SLUGS]


@pytest.fixture
def server(issues: list[Path]):
    preview = PreviewServer(issues, 0, poll_interval=0.05, keepalive=0.3)
    try:
        yield preview.start()
    finally:
        preview.stop()


def fetch(server: PreviewServer, path: str) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8")
    finally:
        conn.close()


def test_the_index_lists_every_issue(server: PreviewServer) -> None:
    status, headers, body = fetch(server, "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    for slug, href in zip(SLUGS, ("/2026-01/", "/2026-02/", "/odd%20name/"), strict=True):
        assert f'<a href="{href}">{slug}</a>' in body
        assert f"Subject {slug}" in body
    assert "3 issues" in body
    statuses = json.loads(fetch(server, "/status.json")[2])
    assert [s["issue"] for s in statuses] == list(SLUGS) and all(s["ok"] for s in statuses)


def test_each_issue_has_its_page_parts_and_a_switcher(server: PreviewServer) -> None:
    status, _, shell = fetch(server, "/odd%20name/")
    assert status == 200 and "Subject odd name" in shell
    assert '<select id="issue"' in shell and '<a href="/">All issues</a>' in shell
    assert '<option value="/odd%20name/" selected>' in shell
    assert '<option value="/2026-01/">' in shell and '<option value="/2026-02/">' in shell
    status, headers, html = fetch(server, "/2026-02/email.html")
    assert status == 200 and "Subject 2026-02" in html
    assert fetch(server, "/2026-02/email.txt")[0] == 200
    assert fetch(server, "/2026-02/email.eml")[0] == 200
    assert json.loads(fetch(server, "/2026-02/status.json")[2])["issue"] == "2026-02"


def test_unknown_issues_are_not_found_and_a_bare_slug_is_redirected(server: PreviewServer) -> None:
    assert fetch(server, "/2099-01/")[0] == 404
    assert fetch(server, "/email.html")[0] == 404  # no issue is the default with several
    status, headers, _ = fetch(server, "/2026-01")
    assert status == 301 and headers["Location"] == "/2026-01/"


def test_an_edit_rebuilds_only_its_issue_and_reloads_its_page(
    server: PreviewServer, issues: list[Path]
) -> None:
    first, second = server.lives["2026-01"], server.lives["2026-02"]
    before_first, before_second = first.latest.number, second.latest.number
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    conn.request("GET", f"/2026-02/events?since={second.latest.version}")
    stream = conn.getresponse()
    assert stream.status == 200
    manifest = issues[1] / "issue.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("Subject 2026-02", "Edited"), "utf-8"
    )
    deadline = time.monotonic() + WAIT
    line = b""
    while b"event: reload" not in line and time.monotonic() < deadline:
        line = stream.fp.readline()
    conn.close()
    assert b"event: reload" in line
    assert second.latest.number > before_second and second.latest.subject == "Edited"
    assert first.latest.number == before_first  # the other issue was not rebuilt
    assert "Edited" in fetch(server, "/")[2]


def test_a_change_to_dispatch_yaml_rebuilds_every_issue(
    server: PreviewServer, issues: list[Path]
) -> None:
    before = {slug: live.latest.number for slug, live in server.lives.items()}
    config = issues[0].parent.parent / "dispatch.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("Test News", "Other News"), "utf-8"
    )
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and any(
        live.latest.number == before[slug] for slug, live in server.lives.items()
    ):
        time.sleep(0.05)
    assert all(live.latest.number > before[slug] for slug, live in server.lives.items())


def test_issues_of_two_projects_or_two_of_one_name_are_refused(
    issues: list[Path], tmp_path: Path
) -> None:
    create_project(tmp_path / "other")
    with pytest.raises(UsageError, match="not an issue of"):
        PreviewServer([issues[0], tmp_path / "other" / "issues" / "test"])
    with pytest.raises(UsageError, match="no issue to preview"):
        PreviewServer([])


def test_the_switcher_and_live_reload_in_chromium(
    server: PreviewServer, issues: list[Path], chromium: object
) -> None:
    page = chromium.new_page()  # type: ignore[attr-defined]
    page.route(
        "http*://**",
        lambda route: route.abort() if "127.0.0.1" not in route.request.url else route.continue_(),
    )
    page.goto(server.url)
    page.click("a[href='/2026-01/']")
    page.wait_for_url(re.compile(re.escape(server.url) + "2026-01/(#.*)?$"))  # the switches: #…
    frame = page.main_frame.child_frames[0]
    frame.wait_for_url("**/2026-01/email.html?scheme=light")
    page.click("button[data-value=dark]")
    page.select_option("#issue", "/2026-02/")
    page.wait_for_url(f"{server.url}2026-02/#*")
    assert "scheme=dark" in page.url  # the switches come along
    frame = page.main_frame.child_frames[0]
    frame.wait_for_url("**/2026-02/email.html?scheme=dark")
    frame.wait_for_load_state()
    assert "Subject 2026-02" in frame.content()
    page.wait_for_selector("#live:text('live')")
    version = page.get_attribute("body", "data-version")
    manifest = issues[1] / "issue.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("Subject 2026-02", "Edited live"), "utf-8"
    )
    # the page's CSP allows no eval, so the wait is a selector: a body of another build
    page.wait_for_selector(f"body:not([data-version='{version}'])", timeout=WAIT * 1000)
    assert "Edited live" in page.title()


def test_dispatch_preview_without_issues_serves_every_issue(issues: list[Path]) -> None:
    project = issues[0].parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch_mail.cli", "preview", "--port", "0"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + WAIT
        while "http://" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert line.startswith("previewing 3 issues at http://127.0.0.1:"), line
        url = line[line.index("http://") :].split()[0]
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            body = response.read().decode("utf-8")
        assert all(f">{slug}</a>" in body for slug in SLUGS)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=WAIT) in (0, 130)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
