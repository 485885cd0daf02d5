"""`dispatch preview` against a real server on a free loopback port, with a real HTTP client.

Each test works on a copy of the repository's project (dispatch.yaml and
issues/2026-q1, same layout) and edits that copy the way a user's editor would.
"""

from __future__ import annotations

import email
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.browser.pages import force_color_scheme
from dispatch_mail.browser.server import PreviewServer
from dispatch_mail.cli import main
from dispatch_mail.errors import UsageError
from dispatch_mail.render.templates import THEME_DIR
from tests.helpers.project import REPO_CONFIG, create_project

ROOT = Path(__file__).resolve().parent.parent
SUBJECT = "DPDK Dispatch Q1 2026"
ITEM_TITLE = "The State of Enterprise Linux for Networking"
# How long to wait for something the test expects to happen: generous, since the machine
# may be busy; a test never asserts how fast it happened, only that and in which order.
WAIT = 20.0


@pytest.fixture
def issue_dir(tmp_path: Path) -> Path:
    create_project(tmp_path, config=REPO_CONFIG, issues={"2026-q1": ROOT / "issues" / "2026-q1"})
    return tmp_path / "issues" / "2026-q1"


@pytest.fixture
def logs() -> list[str]:
    return []


@pytest.fixture
def server(issue_dir: Path, logs: list[str]):
    preview = PreviewServer(issue_dir, 0, log=logs.append, poll_interval=0.05, keepalive=0.3)
    try:
        preview.start()
        yield preview
    finally:
        preview.stop()


def fetch(
    server: PreviewServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, sent with the path exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


class EventStream:
    """A Server-Sent Events client that reads one event at a time."""

    def __init__(self, server: PreviewServer, query: str = "") -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
        self.conn.request("GET", "/events" + query)
        self.sock = (
            self.conn.sock
        )  # http.client lets go of it once it sees a response without a length
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("Content-Type", "").startswith("text/event-stream")
        # The first frame is sent once the stream is following the builds: edits from now on count.
        assert self.next() == {"retry": "1000"}

    def next(self, timeout: float = WAIT) -> dict[str, str]:
        """The fields of the next frame; a comment comes back as {"comment": text}."""
        deadline = time.monotonic() + timeout
        frame: dict[str, str] = {}
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            raw = self.response.readline()
            if not raw:
                raise EOFError("the event stream ended")
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if frame:
                    return frame
                continue
            if line.startswith(":"):
                frame["comment"] = line[1:].strip()
                continue
            name, _, value = line.partition(":")
            frame[name] = value.removeprefix(" ")

    def next_reload(self, timeout: float = WAIT) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(max(deadline - time.monotonic(), 0.01))
            if frame.get("event") == "reload":
                return frame

    def close(self) -> None:
        self.response.close()
        self.conn.close()


@pytest.fixture
def events(server: PreviewServer):
    stream = EventStream(server)
    try:
        yield stream
    finally:
        stream.close()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(
        n
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if needle in line
    )


# ---------------------------------------------------------------------------- pages


def test_pages_answer_with_their_content_types_and_the_issue(server: PreviewServer) -> None:
    status, ctype, body = fetch(server, "/")
    assert (status, ctype) == (200, "text/html; charset=utf-8")
    shell = body.decode("utf-8")
    assert SUBJECT in shell
    for switch in (
        "Desktop",
        "Phone 375",
        "320",
        "Light",
        "Dark",
        "HTML",
        "Plaintext",
        'href="email.eml"',  # relative: the issue's own, whether at / or at /<slug>/
        '"events?since="',
    ):
        assert switch in shell
    assert ITEM_TITLE in shell  # the plaintext tab is part of the page
    for external in ('src="http', 'href="http', "<link", "<script src", "url(", "@import"):
        assert external not in shell  # the page loads nothing from elsewhere

    status, ctype, body = fetch(server, "/email.html")
    assert (status, ctype) == (200, "text/html; charset=utf-8")
    assert SUBJECT in body.decode("utf-8") and ITEM_TITLE in body.decode("utf-8")

    status, ctype, body = fetch(server, "/email.txt")
    assert (status, ctype) == (200, "text/plain; charset=utf-8")
    assert ITEM_TITLE in body.decode("utf-8")

    status, ctype, body = fetch(server, "/email.eml")
    assert (status, ctype) == (200, "message/rfc822")
    message = email.message_from_bytes(body)
    assert SUBJECT in message["Subject"]
    assert message.is_multipart()

    status, ctype, body = fetch(server, "/status.json")
    assert (status, ctype) == (200, "application/json")
    report = json.loads(body)
    assert report["build"] == 1 and report["ok"] is True and report["errors"] == []
    assert isinstance(report["warnings"], list)


def test_the_dark_switch_serves_the_email_with_its_dark_rules_forced_on(
    server: PreviewServer,
) -> None:
    original = fetch(server, "/email.html")[2].decode("utf-8")
    assert "(prefers-color-scheme: dark)" in original
    dark = fetch(server, "/email.html?scheme=dark")[2].decode("utf-8")
    assert "prefers-color-scheme" not in dark
    assert ":root{color-scheme:dark !important}" in dark
    light = fetch(server, "/email.html?scheme=light")[2].decode("utf-8")
    assert ":root{color-scheme:light !important}" in light
    assert fetch(server, "/email.html?scheme=sepia")[0] == 400


def test_force_color_scheme_rewrites_only_style_and_media_attributes() -> None:
    page = (
        "<html><head><style>@media (prefers-color-scheme: dark) { a { color: red } }\n"
        "@media ( PREFERS-COLOR-SCHEME : light ) { a { color: blue } }</style></head><body>"
        '<picture><source srcset="d.png" media="(prefers-color-scheme: dark)">'
        '<img src="l.png"></picture>'
        "<p>Write (prefers-color-scheme: dark) in your CSS.</p></body></html>"
    )
    dark = force_color_scheme(page, "dark")
    assert "@media (min-width: 0px) { a { color: red } }" in dark
    assert "@media (max-width: 0px) { a { color: blue } }" in dark
    assert 'media="(min-width: 0px)"' in dark
    assert "<p>Write (prefers-color-scheme: dark) in your CSS.</p>" in dark
    assert dark.index(":root{color-scheme:dark !important}") < dark.index("</head>")
    light = force_color_scheme(page, "light")
    assert "@media (max-width: 0px) { a { color: red } }" in light
    assert "@media (min-width: 0px) { a { color: blue } }" in light
    with pytest.raises(ValueError):
        force_color_scheme(page, "sepia")


# ---------------------------------------------------------------------------- security


def test_the_socket_is_bound_to_loopback_only(server: PreviewServer) -> None:
    assert server.address == ("127.0.0.1", server.port)
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_other_hosts_are_refused(issue_dir: Path) -> None:
    for host in ("0.0.0.0", "", "::", "192.168.1.10", "localhost"):
        with pytest.raises(UsageError, match="127.0.0.1 only"):
            PreviewServer(issue_dir, 0, host=host)


def test_requests_for_another_host_name_are_refused(server: PreviewServer) -> None:
    """DNS rebinding: a page at evil.example resolved to 127.0.0.1 must not read the preview."""
    assert fetch(server, "/", {"Host": "evil.example"})[0] == 403
    assert fetch(server, "/email.eml", {"Host": f"evil.example:{server.port}"})[0] == 403
    assert fetch(server, "/", {"Host": f"localhost:{server.port}"})[0] == 200


TRAVERSALS = [
    "/../etc/passwd",
    "/etc/passwd",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/dispatch.yaml",
    "/issue.yaml",
    "/issues/2026-q1/issue.yaml",
    "/email.html/../../dispatch.yaml",
    "/email.html/",
    "//etc/passwd",
    "/theme/footer.mjml.j2",
]


def test_only_the_fixed_paths_are_served(server: PreviewServer) -> None:
    for path in TRAVERSALS:
        status, _, body = fetch(server, path)
        assert status == 404, path
        assert b"root:" not in body and b"sender:" not in body


def test_other_methods_are_not_served(server: PreviewServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    try:
        conn.request("POST", "/", body=b"x")
        assert conn.getresponse().status == 501
    finally:
        conn.close()


def test_problems_are_escaped_in_the_page(
    server: PreviewServer, events: EventStream, issue_dir: Path
) -> None:
    manifest = issue_dir / "issue.yaml"
    edit(manifest, 'name: "Q1 2026"', 'name: "Q1 2026"\n"<img src=x onerror=alert(1)>": 1')
    events.next_reload()
    shell = fetch(server, "/")[2].decode("utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in shell
    assert "<img src=x" not in shell
    status, _, body = fetch(server, "/email.html")
    assert status == 500 and b"<img src=x" not in body


# ---------------------------------------------------------------------------- live rebuilds


def test_a_manifest_edit_rebuilds_and_sends_reload(
    server: PreviewServer, events: EventStream, issue_dir: Path, logs: list[str]
) -> None:
    edit(issue_dir / "issue.yaml", f'title: "{ITEM_TITLE}"', f'title: "{ITEM_TITLE}, revised"')
    frame = events.next_reload()
    assert json.loads(frame["data"]) == {"build": 2, "ok": True}
    assert frame["id"] == server.build.version
    html = fetch(server, "/email.html")[2].decode("utf-8")
    assert f"{ITEM_TITLE}, revised" in html
    assert "issue.yaml: built 2026-q1 (#2" in logs[-1]


@pytest.mark.parametrize(
    "old, new, marker, expected",
    [
        # YAML reports a syntax error where the parser gave up, a few lines on: any line will do.
        ('name: "Q1 2026"', 'name: ["Q1 2026"', None, "YAML syntax error"),
        (
            'name: "Q1 2026"',
            'name: "Q1 2026"\nnmae: "typo"',
            "nmae:",
            "nmae: unknown key (did you mean 'name'?)",
        ),
    ],
    ids=["invalid-yaml", "unknown-key"],
)
def test_a_broken_manifest_shows_its_problems_and_a_fix_brings_the_email_back(
    server: PreviewServer,
    events: EventStream,
    issue_dir: Path,
    logs: list[str],
    old: str,
    new: str,
    marker: str | None,
    expected: str,
) -> None:
    manifest = issue_dir / "issue.yaml"
    good = manifest.read_text(encoding="utf-8")
    edit(manifest, old, new)
    assert json.loads(events.next_reload()["data"]) == {"build": 2, "ok": False}
    if marker:
        where = f"issues/2026-q1/issue.yaml:{line_of(manifest, marker)}:1: "
    else:
        found = re.search(r"issues/2026-q1/issue\.yaml:\d+:\d+: ", server.build.errors[0])
        assert found, server.build.errors
        where = found.group(0)

    status, _, body = fetch(server, "/")
    shell = body.decode("utf-8")
    assert status == 200
    assert 'class="errors"' in shell and where in shell and expected.replace("'", "&#x27;") in shell
    assert 'id="frame"' not in shell
    status, ctype, body = fetch(server, "/email.html")
    assert (status, ctype) == (500, "text/html; charset=utf-8") and where in body.decode("utf-8")
    assert fetch(server, "/email.txt")[0] == 500
    report = json.loads(fetch(server, "/status.json")[2])
    assert report["ok"] is False and any(where in e for e in report["errors"])
    assert any(line.startswith("error: ") and where in line for line in logs)

    manifest.write_text(good, encoding="utf-8")
    assert json.loads(events.next_reload()["data"]) == {"build": 3, "ok": True}
    status, _, body = fetch(server, "/email.html")
    assert status == 200 and ITEM_TITLE in body.decode("utf-8")
    assert 'id="frame"' in fetch(server, "/")[2].decode("utf-8")


def test_a_new_template_override_rebuilds(
    server: PreviewServer, events: EventStream, issue_dir: Path
) -> None:
    # The copy has no templates/ folder yet: the override arrives with the folder.
    footer = (THEME_DIR / "footer.mjml.j2").read_text(encoding="utf-8")
    overridden = footer.replace(
        "{{ ft.postal_address }}", "{{ ft.postal_address }} · OVERRIDE-MARKER"
    )
    assert overridden != footer
    templates = issue_dir.parent.parent / "templates"
    templates.mkdir()
    (templates / "footer.mjml.j2").write_text(overridden, encoding="utf-8")
    assert json.loads(events.next_reload()["data"])["ok"] is True
    assert "OVERRIDE-MARKER" in fetch(server, "/email.html")[2].decode("utf-8")


def test_dispatch_yaml_is_watched(
    server: PreviewServer, events: EventStream, issue_dir: Path
) -> None:
    edit(
        issue_dir.parent.parent / "dispatch.yaml",
        "organisation: DPDK Project",
        "organisation: DPDK Projekt",
    )
    events.next_reload()
    assert "DPDK Projekt" in fetch(server, "/email.html")[2].decode("utf-8")


def test_a_burst_of_saves_makes_one_rebuild(
    server: PreviewServer, events: EventStream, issue_dir: Path
) -> None:
    manifest = issue_dir / "issue.yaml"
    text = manifest.read_text(encoding="utf-8")
    for n in range(8):
        manifest.write_text(text.replace(ITEM_TITLE, f"{ITEM_TITLE} {n}"), encoding="utf-8")
        time.sleep(0.01)
    assert json.loads(events.next_reload()["data"])["build"] == 2
    # The stream's next word is a keep-alive, sent only after a keepalive interval
    # without a build: no second reload came first.
    assert events.next() == {"comment": "keep-alive"}
    assert server.build.number == 2
    assert f"{ITEM_TITLE} 7" in fetch(server, "/email.html")[2].decode("utf-8")


def test_a_page_older_than_the_build_is_told_to_reload_at_once(server: PreviewServer) -> None:
    stale = EventStream(server, "?since=from-an-earlier-server.1")
    current = EventStream(server, f"?since={server.build.version}")
    try:
        # "At once": the reload is the stale page's first frame, before any keep-alive.
        frame = stale.next()
        assert frame.get("event") == "reload" and frame["id"] == server.build.version
        assert current.next() == {"comment": "keep-alive"}
    finally:
        stale.close()
        current.close()


def test_stop_ends_open_event_streams(issue_dir: Path) -> None:
    keepalive = 300.0  # the stream would stay silent this long if stop() left it open
    preview = PreviewServer(issue_dir, 0, keepalive=keepalive)
    preview.start()
    stream = EventStream(preview)
    try:
        preview.stop()
        # The stream ends (EOF), well before a keep-alive was due; a stream left open
        # would raise TimeoutError here instead, which is not among these.
        with pytest.raises((EOFError, ConnectionError)):
            stream.next(timeout=min(WAIT, keepalive / 2))
    finally:
        stream.close()
        preview.stop()


def test_a_busy_port_is_a_usage_error(server: PreviewServer, issue_dir: Path) -> None:
    with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{server.port}: ") as caught:
        PreviewServer(issue_dir, server.port).start()
    assert caught.value.hint == "port" and "--port" not in str(caught.value)
    # The command names its own option.
    result = CliRunner().invoke(main, ["preview", str(issue_dir), "--port", str(server.port)])
    assert result.exit_code == 2, result.output
    assert "(choose another --port; 0 takes any free one)" in result.output


# ---------------------------------------------------------------------------- in a browser


def test_the_dark_switch_turns_the_email_dark_in_chromium(server: PreviewServer) -> None:
    """The claim behind ?scheme=dark: the email's dark rules apply while the system is light.

    Skips without Chromium or playwright, except under CI=true, where it fails
    (the convention of tests/test_screenshot.py).
    """
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
            page = browser.new_page(color_scheme="light")
            page.route(
                "http*://**",
                lambda route: (
                    route.abort() if "127.0.0.1" not in route.request.url else route.continue_()
                ),
            )
            page.goto(server.url + "#scheme=dark")
            email = page.main_frame.child_frames[0]
            email.wait_for_url("**/email.html?scheme=dark")
            email.wait_for_load_state()
            body = page.frame_locator("#frame").locator("body")
            probe = (
                "b => [getComputedStyle(b).backgroundColor,"
                " matchMedia('(prefers-color-scheme: dark)').matches]"
            )
            background, system_dark = body.evaluate(probe)
            assert system_dark is False
            assert background == "rgb(13, 17, 23)"  # brand.colors.dark_background of the theme
            page.click("button[data-value=light]")
            email.wait_for_url("**/email.html?scheme=light")
            email.wait_for_load_state()
            assert body.evaluate(probe)[0] == "rgb(238, 241, 245)"  # brand.colors.background
        finally:
            browser.close()


# ---------------------------------------------------------------------------- the command


def test_dispatch_preview_runs_until_ctrl_c(issue_dir: Path) -> None:
    project = issue_dir.parent.parent
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch_mail.cli", "preview", "issues/2026-q1", "--port", "0"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in proc.stdout],  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    output: list[str] = []
    try:
        url = None
        deadline = time.monotonic() + WAIT
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            output.append(line)
            if "http://127.0.0.1:" in line:
                url = line[line.index("http://") :].split()[0]
        assert url, "".join(output)
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            assert response.status == 200 and SUBJECT in response.read().decode("utf-8")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=WAIT)  # it ends at the end of the output
    assert not reader.is_alive()
    while not lines.empty():
        output.append(lines.get())
    text = "".join(output)
    assert code in (0, 130), text
    assert "Traceback" not in text
    assert "preview stopped" in text
