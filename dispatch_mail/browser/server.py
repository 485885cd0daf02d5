"""`dispatch preview`: the issue served on 127.0.0.1, rebuilt and reloaded on every save.

Standard library only. A ThreadingHTTPServer answers a fixed set of paths and
never maps a URL to a file. A thread polls the mtimes of everything a build
reads (the issue folder, ``dispatch.yaml``, the newsletter's templates and the
built-in theme), rebuilds in memory when one changes, and tells every open page
to reload through Server-Sent Events. A failed build replaces the email with its
problems; the server keeps running, and saving the fix brings the email back.

Dark mode: a page cannot choose what ``prefers-color-scheme`` matches inside an
iframe. In Chromium (checked with 156) neither ``color-scheme: dark`` on the
``<iframe>`` element nor ``<meta name="color-scheme" content="dark">`` or
``:root {color-scheme: dark}`` inside the framed document changes the media
query; only the operating system's setting or DevTools emulation do. So the
frame loads ``/email.html?scheme=dark``, a copy of the email whose
``(prefers-color-scheme: dark)`` conditions are rewritten to one that always
matches (and ``light`` ones to one that never does), plus ``:root{color-scheme:
dark !important}`` so the browser's own defaults (canvas, unstyled text) turn
dark as a mail client's would. ``?scheme=light`` does the opposite, so both
switches show the same thing whatever the viewer's own system setting is.
``/email.html`` without a query is the email byte for byte.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import socketserver
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs

from dispatch_mail.errors import ContentError, DispatchError, UsageError
from dispatch_mail.project.loader import (
    find_project_root,
    load_project,
    resolve_issue_dir,
    shown_path,
)
from dispatch_mail.project.settings import PROJECT_FILE
from dispatch_mail.publish.build import build_issue
from dispatch_mail.render import templates as template_engine

HOST = "127.0.0.1"
POLL_SECONDS = 0.3
SETTLE_SECONDS = (
    0.1  # a burst of saves is over when one scan this long after the last sees nothing new
)
MAX_SETTLE_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0
SCHEMES = ("light", "dark")

Log = Callable[[str], None]
Signature = dict[str, tuple[int, int, int]]  # path -> (mtime_ns, size, inode)


@dataclass(frozen=True)
class Build:
    """One build attempt, as the pages show it: the outputs, or the problems."""

    number: int
    version: str  # changes with every build and every server start; the pages' reload token
    slug: str
    finished: datetime
    seconds: float
    subject: str = ""
    html: str = ""
    text: str = ""
    eml: bytes = b""
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def status(self) -> dict:
        return {
            "build": self.number,
            "version": self.version,
            "ok": self.ok,
            "issue": self.slug,
            "subject": self.subject,
            "finished": self.finished.isoformat(timespec="seconds"),
            "milliseconds": round(self.seconds * 1000),
            "warnings": list(self.warnings),
            "errors": list(self.errors),
        }


class PreviewServer:
    """The preview of one issue: an HTTP server on 127.0.0.1 plus a watcher thread.

    ``port=0`` takes any free port; ``url`` and ``port`` tell which once started.
    Use ``start()``/``stop()`` or ``with PreviewServer(...) as server:``.
    """

    def __init__(
        self,
        issue_dir: Path | str,
        port: int = 0,
        *,
        host: str = HOST,
        log: Log | None = None,
        poll_interval: float = POLL_SECONDS,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        if host != HOST:
            # The preview shows unpublished content and has no authentication.
            raise UsageError(f"the preview listens on {HOST} only, not on {host}")
        self.issue_dir = resolve_issue_dir(Path(issue_dir))
        self.root = find_project_root(self.issue_dir)
        self.log: Log = log or (lambda line: None)
        self.poll_interval = poll_interval
        self.keepalive = keepalive
        self._requested_port = port
        self._boot = secrets.token_hex(4)
        self._templates_dir = self._configured_templates_dir()
        self._build: Build | None = None
        self._build_lock = threading.Lock()
        self._changed = threading.Condition()  # notified after each build, and on stop
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._requested_port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def address(self) -> tuple[str, int]:
        """Where the listening socket is bound, as the operating system reports it."""
        if self._httpd is None:
            raise RuntimeError("the preview is not running")
        host, port = self._httpd.socket.getsockname()[:2]
        return host, port

    @property
    def closing(self) -> bool:
        return self._stopping.is_set()

    @property
    def build(self) -> Build:
        if self._build is None:
            raise RuntimeError("the preview has not built yet: call start()")
        return self._build

    def start(self) -> Self:
        if self._httpd is not None or self._stopping.is_set():
            raise RuntimeError("a preview starts once")
        try:
            httpd = _HTTPServer((HOST, self._requested_port), _Handler)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {HOST}:{self._requested_port}: {exc.strerror or exc}"
                " (choose another --port; 0 takes any free one)"
            ) from None
        httpd.preview = self
        self._httpd = httpd
        baseline = self._scan()  # before the build, so a save during it is not missed
        self.rebuild()
        self._spawn("dispatch-preview-http", lambda: httpd.serve_forever(poll_interval=0.1))
        self._spawn("dispatch-preview-watch", lambda: self._watch(baseline))
        return self

    def stop(self) -> None:
        """Stop serving and watching; open event streams end. Safe to call twice."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            if self._threads:
                httpd.shutdown()
            httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ---------------------------------------------------------------- building

    def rebuild(self, changed: Iterable[str] = ()) -> Build:
        """Build the issue in memory, publish the outcome and wake the event streams."""
        changed = sorted(changed)
        with self._build_lock:
            if any(self._is_template(path) for path in changed):
                # The Jinja environment is cached per search path and checks only the
                # files it already loaded: a new override would go unnoticed.
                template_engine.reset_templates()
            number = self._build.number + 1 if self._build else 1
            started = time.perf_counter()
            fields: dict = {}
            try:
                result = build_issue(self.issue_dir, write=False)
            except ContentError as exc:
                fields["errors"] = tuple(str(p) for p in exc.problems) or (str(exc),)
            except DispatchError as exc:
                fields["errors"] = (str(exc),)
            except Exception as exc:  # noqa: BLE001 - a bug or an odd template: show it, keep serving
                fields["errors"] = (f"internal error: {type(exc).__name__}: {exc}",)
            else:
                self._templates_dir = result.project.root / result.project.templates
                fields.update(
                    subject=result.issue.subject,
                    html=result.rendered.html,
                    text=result.rendered.text,
                    eml=result.eml,
                    warnings=tuple(result.warnings),
                )
            build = Build(
                number=number,
                version=f"{self._boot}.{number}",
                slug=self.issue_dir.name,
                finished=datetime.now().astimezone(),
                seconds=time.perf_counter() - started,
                **fields,
            )
            with self._changed:
                self._build = build
                self._changed.notify_all()
        self._report(build, changed)
        return build

    def wait_for_build(self, after: int, timeout: float | None) -> Build | None:
        """The newest build once its number differs from ``after``; None on timeout or stop."""
        with self._changed:
            self._changed.wait_for(lambda: self.closing or self.build.number != after, timeout)
            if self.closing or self.build.number == after:
                return None
            return self.build

    def _report(self, build: Build, changed: list[str]) -> None:
        took = f"#{build.number}, {build.seconds * 1000:.0f} ms"
        prefix = f"{_describe_changes(changed, self.root)}: " if changed else ""
        if build.ok:
            self.log(f"{prefix}built {build.slug} ({took})")
            for warning in build.warnings:
                self.log(f"warning: {warning}")
            return
        for problem in build.errors:
            self.log(f"error: {problem}")
        count = len(build.errors)
        self.log(
            f"{prefix}build {build.number} of {build.slug} failed: {count} problem{'s' if count != 1 else ''},"
            " shown in the browser; save a fix to rebuild"
        )

    # ---------------------------------------------------------------- watching

    def _configured_templates_dir(self) -> Path:
        try:
            project = load_project(self.root)
        except DispatchError:
            return self.root / "templates"  # the default; corrected after the first good build
        return project.root / project.templates

    def _template_roots(self) -> tuple[Path, ...]:
        return (self._templates_dir, template_engine.THEME_DIR)

    def _is_template(self, path: str) -> bool:
        return any(_is_within(path, folder) for folder in self._template_roots())

    def _scan(self) -> Signature:
        """mtime, size and inode of every input: enough to see edits, creations, deletions and renames."""
        signature: Signature = {}
        _stat_into(signature, self.root / PROJECT_FILE)
        for folder in (self.issue_dir, *self._template_roots()):
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = [d for d in dirnames if not _ignored(d)]
                for name in filenames:
                    if not _ignored(name):
                        _stat_into(signature, Path(dirpath, name))
        return signature

    def _watch(self, seen: Signature) -> None:
        while not self._stopping.wait(self.poll_interval):
            try:
                current = self._scan()
                if current == seen:
                    continue
                current = self._settle(current)
                if current is None:
                    return
                changed = {p for p in current.keys() | seen.keys() if current.get(p) != seen.get(p)}
                seen = current
                self.rebuild(changed)
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any surprise
                self.log(f"preview: watching failed once: {type(exc).__name__}: {exc}")

    def _settle(self, current: Signature) -> Signature | None:
        """Wait out a burst of saves (an editor writing several files, a git checkout)."""
        deadline = time.monotonic() + MAX_SETTLE_SECONDS
        while time.monotonic() < deadline:
            if self._stopping.wait(SETTLE_SECONDS):
                return None
            again = self._scan()
            if again == current:
                break
            current = again
        return current


def _stat_into(signature: Signature, path: Path) -> None:
    try:
        st = path.stat()
    except OSError:  # absent, or deleted between listing and stat
        return
    signature[str(path)] = (st.st_mtime_ns, st.st_size, st.st_ino)


def _ignored(name: str) -> bool:
    """Editor swap and backup files, hidden folders and caches: saving them changes nothing."""
    return (
        name.startswith((".", "#"))
        or name.endswith(("~", ".swp", ".swx", ".tmp"))
        or name == "__pycache__"
    )


def _is_within(path: str, folder: Path) -> bool:
    return path.startswith(str(folder) + os.sep)


def _describe_changes(changed: list[str], root: Path) -> str:
    names = []
    for path in changed:
        if _is_within(path, template_engine.THEME_DIR):
            names.append("theme/" + os.path.relpath(path, template_engine.THEME_DIR))
        else:
            names.append(os.path.relpath(path, root) if _is_within(path, root) else path)
    shown = ", ".join(names[:3])
    return f"{shown} and {len(names) - 3} more" if len(names) > 3 else shown


# ------------------------------------------------------------------------ dark mode

_SCHEME_FEATURE = re.compile(r"\(\s*prefers-color-scheme\s*:\s*(light|dark)\s*\)", re.IGNORECASE)
_STYLE_ELEMENT = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.IGNORECASE | re.DOTALL)
_MEDIA_TAG = re.compile(
    r"<(?:link|source|img)\b[^>]*\bmedia\s*=[^>]*>", re.IGNORECASE
)  # <picture> swaps
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_ALWAYS = "(min-width: 0px)"
_NEVER = "(max-width: 0px)"  # valid, so `not (…)` still negates it; false in any visible frame


def force_color_scheme(email_html: str, scheme: str) -> str:
    """The email as a client set to ``scheme`` shows it, whatever the viewer's system prefers.

    Only ``<style>`` elements and ``media`` attributes are rewritten, so text that
    mentions ``prefers-color-scheme`` is left alone.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")

    def feature(match: re.Match[str]) -> str:
        return _ALWAYS if match.group(1).lower() == scheme else _NEVER

    def rewrite(match: re.Match[str]) -> str:
        return _SCHEME_FEATURE.sub(feature, match.group(0))

    email_html = _MEDIA_TAG.sub(rewrite, _STYLE_ELEMENT.sub(rewrite, email_html))
    # Last in <head> and !important, so it beats the email's own `color-scheme: light dark`.
    # <base target> opens the email's links in a new tab instead of inside the frame.
    extra = f'<style>:root{{color-scheme:{scheme} !important}}</style><base target="_blank">'
    head_end = _HEAD_END.search(email_html)
    if head_end is None:
        return extra + email_html
    return email_html[: head_end.start()] + extra + email_html[head_end.start() :]


# ------------------------------------------------------------------------ HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    preview: PreviewServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's name, which can stall for
        # seconds; the name is known.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the browser went away mid-answer: normal on reload
        self.preview.log(f"preview: error answering a request: {type(exc).__name__}: {exc}")


@dataclass
class _Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


_EMAIL_CSP = (
    "default-src * data: blob:; style-src * 'unsafe-inline'; script-src 'none'; object-src 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "dispatch-preview"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would bury the build messages

    def _answer(self) -> None:
        preview = self.server.preview
        if not self._host_allowed():
            # DNS rebinding: a web page whose name now points at 127.0.0.1 must not read the preview.
            return self._send(
                _Response(
                    403,
                    "text/plain; charset=utf-8",
                    b"this preview answers only to 127.0.0.1 and localhost\n",
                )
            )
        target = self.path.split("#", 1)[0]
        path, _, query = target.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        if path == "/events":
            return self._events(preview, params.get("since") or self.headers.get("Last-Event-ID"))
        route = {
            "/": self._shell,
            "/email.html": self._email_html,
            "/email.txt": self._email_text,
            "/email.eml": self._email_eml,
            "/status.json": self._status,
        }.get(path)
        if route is None:
            return self._send(_Response(404, "text/plain; charset=utf-8", b"not found\n"))
        self._send(route(preview.build, params))

    def _host_allowed(self) -> bool:
        host = (self.headers.get("Host") or "").strip().lower()
        if not host:
            return True  # an HTTP/1.0 client; browsers always send Host
        port = str(self.server.server_address[1])
        return host in {HOST, "localhost", f"{HOST}:{port}", f"localhost:{port}"}

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        headers = {
            "Content-Type": response.content_type,
            "Content-Length": str(len(response.body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            **response.headers,
        }
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    # ---------------------------------------------------------------- pages

    def _shell(self, build: Build, params: dict[str, str]) -> _Response:
        nonce = secrets.token_urlsafe(16)
        csp = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "frame-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        body = shell_page(build, nonce).encode("utf-8")
        return _Response(200, "text/html; charset=utf-8", body, {"Content-Security-Policy": csp})

    def _email_html(self, build: Build, params: dict[str, str]) -> _Response:
        scheme = params.get("scheme")
        if scheme is not None and scheme not in SCHEMES:
            return _Response(400, "text/plain; charset=utf-8", b"scheme is light or dark\n")
        if not build.ok:
            return _Response(500, "text/html; charset=utf-8", error_page(build).encode("utf-8"))
        email = force_color_scheme(build.html, scheme) if scheme else build.html
        return _Response(
            200,
            "text/html; charset=utf-8",
            email.encode("utf-8"),
            {"Content-Security-Policy": _EMAIL_CSP},
        )

    def _email_text(self, build: Build, params: dict[str, str]) -> _Response:
        if not build.ok:
            return _Response(500, "text/plain; charset=utf-8", _error_text(build).encode("utf-8"))
        return _Response(200, "text/plain; charset=utf-8", build.text.encode("utf-8"))

    def _email_eml(self, build: Build, params: dict[str, str]) -> _Response:
        if not build.ok:
            return _Response(500, "text/plain; charset=utf-8", _error_text(build).encode("utf-8"))
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", build.slug) or "email"
        return _Response(
            200,
            "message/rfc822",
            build.eml,
            {"Content-Disposition": f'inline; filename="{filename}.eml"'},
        )

    def _status(self, build: Build, params: dict[str, str]) -> _Response:
        body = json.dumps(build.status(), indent=2).encode("utf-8")
        return _Response(200, "application/json", body)

    # ---------------------------------------------------------------- live reload

    def _events(self, preview: PreviewServer, since: str | None) -> None:
        """Server-Sent Events: `reload` after every build, a comment now and then to keep the line open."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command == "HEAD":
            return
        build = preview.build
        try:
            self.wfile.write(b"retry: 1000\n\n")
            if since and since != build.version:  # rebuilt (or restarted) since that page was made
                self.wfile.write(_reload_event(build))
            while True:
                newer = preview.wait_for_build(build.number, preview.keepalive)
                if preview.closing:
                    return
                if newer is None:
                    self.wfile.write(b": keep-alive\n\n")
                    continue
                build = newer
                self.wfile.write(_reload_event(build))
        except (ConnectionError, TimeoutError, OSError):
            return  # the page closed or reloaded


def _reload_event(build: Build) -> bytes:
    data = json.dumps({"build": build.number, "ok": build.ok})
    return f"id: {build.version}\nevent: reload\ndata: {data}\n\n".encode()


# ------------------------------------------------------------------------ page text

_ERROR_CSS = """
.errors { align-self: flex-start; max-width: 960px; width: 100%; background: #fff; border: 1px solid #f0b4b0; border-left: 6px solid #b42318; border-radius: 6px; padding: 16px 20px; }
.errors h1 { font-size: 18px; margin: 0 0 8px; color: #b42318; }
.errors ul { margin: 0; padding-left: 20px; }
.errors li { margin: 4px 0; }
.errors code { font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
.errors p { color: var(--muted); margin: 12px 0 0; }
"""

_SHELL_CSS = (
    """
:root { --bar: #f6f8fa; --line: #d0d7de; --ink: #1f2328; --muted: #59636e; --accent: #0a5eb0; }
* { box-sizing: border-box; }
html, body { height: 100%; }
body { margin: 0; display: flex; flex-direction: column; font: 14px/1.4 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); background: #e6e9ee; }
header { background: var(--bar); border-bottom: 1px solid var(--line); padding: 8px 12px; display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; }
.title { flex: 1 1 320px; min-width: 0; }
.title strong { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.meta { color: var(--muted); font-size: 12px; }
.meta .bad { color: #b42318; font-weight: 600; }
.meta .good { color: #1a7f37; }
nav { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.group { display: inline-flex; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
.group button { font: inherit; border: 0; border-right: 1px solid var(--line); background: #fff; color: var(--ink); padding: 4px 10px; cursor: pointer; }
.group button:last-child { border-right: 0; }
.group button[aria-pressed="true"] { background: var(--accent); color: #fff; }
nav a { color: var(--accent); }
#live { font-size: 12px; color: var(--muted); }
#live.down { color: #b42318; }
details.warnings { background: #fff8c5; border-bottom: 1px solid #d4a72c; padding: 6px 12px; }
details.warnings ul { margin: 4px 0; padding-left: 20px; }
main { flex: 1; min-height: 0; overflow: auto; display: flex; padding: 16px; }
main > * { margin-left: auto; margin-right: auto; }  /* centred, yet reachable when wider than the window */
body[data-scheme="dark"] main { background: #111317; }
#frame { display: block; height: 100%; width: 800px; max-width: none; border: 1px solid var(--line); background: #fff; }
body[data-scheme="dark"] #frame { background: #000; border-color: #444; }
body[data-width="phone"] #frame, body[data-width="phone"] #text { width: 375px; }
body[data-width="narrow"] #frame, body[data-width="narrow"] #text { width: 320px; }
#text { margin-top: 0; margin-bottom: 0; width: 800px; max-width: none; min-height: 100%; height: max-content; padding: 16px; background: #fff; border: 1px solid var(--line);
  font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
body[data-scheme="dark"] #text { background: #1c1e22; color: #e6e6e6; border-color: #444; }
body[data-view="text"] #frame, body[data-view="html"] #text { display: none; }
"""
    + _ERROR_CSS
)

# Switch state lives in the URL's #fragment, so it survives the reloads.
_SHELL_JS = """
(function () {
  "use strict";
  var body = document.body;
  var allowed = { width: ["desktop", "phone", "narrow"], scheme: ["light", "dark"], view: ["html", "text"] };
  var state = { width: "desktop", scheme: "light", view: "html" };
  location.hash.slice(1).split("&").forEach(function (part) {
    var kv = part.split("=");
    var key = decodeURIComponent(kv[0] || ""), value = decodeURIComponent(kv[1] || "");
    if (allowed.hasOwnProperty(key) && allowed[key].indexOf(value) >= 0) { state[key] = value; }
  });
  var frame = document.getElementById("frame");
  var main = document.getElementById("main");
  var scrollKey = "dispatch-preview-scroll";

  function apply() {
    Object.keys(state).forEach(function (key) { body.setAttribute("data-" + key, state[key]); });
    document.querySelectorAll("button[data-set]").forEach(function (button) {
      var on = state[button.getAttribute("data-set")] === button.getAttribute("data-value");
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    if (frame) {
      var src = "/email.html?scheme=" + state.scheme;
      if (frame.getAttribute("src") !== src) { frame.setAttribute("src", src); }
    }
    var hash = Object.keys(state).map(function (key) { return key + "=" + state[key]; }).join("&");
    history.replaceState(null, "", "#" + hash);
  }
  document.querySelectorAll("button[data-set]").forEach(function (button) {
    button.addEventListener("click", function () {
      state[button.getAttribute("data-set")] = button.getAttribute("data-value");
      apply();
    });
  });

  function saveScroll() {
    var frameY = 0;
    try { frameY = frame ? frame.contentWindow.scrollY : 0; } catch (e) {}
    sessionStorage.setItem(scrollKey, JSON.stringify({ frame: frameY, main: main.scrollTop }));
  }
  var saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(scrollKey) || "null"); } catch (e) {}
  sessionStorage.removeItem(scrollKey);
  if (saved) {
    main.scrollTop = saved.main || 0;
    if (frame) {
      frame.addEventListener("load", function () {
        try { frame.contentWindow.scrollTo(0, saved.frame || 0); } catch (e) {}
      }, { once: true });
    }
  }
  apply();

  var live = document.getElementById("live");
  var events = new EventSource("/events?since=" + encodeURIComponent(body.getAttribute("data-version")));
  events.addEventListener("open", function () { live.textContent = "live"; live.className = ""; });
  events.addEventListener("error", function () { live.textContent = "reconnecting\\u2026"; live.className = "down"; });
  events.addEventListener("reload", function () { saveScroll(); location.reload(); });
})();
"""


def _button(group: str, value: str, label: str) -> str:
    return f'<button type="button" data-set="{group}" data-value="{value}" aria-pressed="false">{label}</button>'


def shell_page(build: Build, nonce: str) -> str:
    """The preview page: switches, then the email in a frame, or the build's problems."""
    e = html.escape
    when = build.finished.strftime("%H:%M:%S")
    if build.ok:
        state = f'<span class="good">built</span> #{build.number} at {when}'
        title = build.subject or build.slug
    else:
        count = len(build.errors)
        state = f'<span class="bad">failed: {count} problem{"s" if count != 1 else ""}</span> #{build.number} at {when}'
        title = f"{build.slug}: build failed"
    warnings = ""
    if build.warnings:
        items = "".join(f"<li>{e(w)}</li>" for w in build.warnings)
        count = len(build.warnings)
        warnings = f'<details class="warnings"><summary>{count} warning{"s" if count != 1 else ""}</summary><ul>{items}</ul></details>'
    if build.ok:
        content = (
            '<iframe id="frame" title="The email" '
            'sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"></iframe>'
            f'<pre id="text" aria-label="The plaintext part">{e(build.text)}</pre>'
        )
    else:
        content = error_panel(build)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · dispatch preview</title>
<style nonce="{e(nonce)}">{_SHELL_CSS}</style>
</head>
<body data-version="{e(build.version)}" data-width="desktop" data-scheme="light" data-view="html">
<header>
  <div class="title"><strong>{e(title)}</strong><span class="meta">{e(build.slug)} · {state}</span></div>
  <nav aria-label="Preview switches">
    <span class="group" role="group" aria-label="Width">{_button("width", "desktop", "Desktop")}{_button("width", "phone", "Phone 375")}{_button("width", "narrow", "320")}</span>
    <span class="group" role="group" aria-label="Color scheme">{_button("scheme", "light", "Light")}{_button("scheme", "dark", "Dark")}</span>
    <span class="group" role="group" aria-label="Part">{_button("view", "html", "HTML")}{_button("view", "text", "Plaintext")}</span>
    <a href="/email.eml">Raw .eml</a>
    <span id="live">connecting…</span>
  </nav>
</header>
{warnings}
<main id="main">{content}</main>
<script nonce="{e(nonce)}">{_SHELL_JS}</script>
</body>
</html>
"""


def error_panel(build: Build) -> str:
    count = len(build.errors)
    items = "".join(f"<li><code>{html.escape(problem)}</code></li>" for problem in build.errors)
    return (
        f'<section class="errors" role="alert"><h1>The build failed: {count} problem{"s" if count != 1 else ""}</h1>'
        f"<ul>{items}</ul><p>Fix the file and save: the preview rebuilds and this page reloads by itself.</p></section>"
    )


def error_page(build: Build) -> str:
    """What /email.html answers while the build is broken."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(build.slug)}: build failed</title>"
        f"<style>body {{ font: 14px/1.4 sans-serif; margin: 16px; }} :root {{ --muted: #59636e; }} {_ERROR_CSS}</style>"
        f"</head><body>{error_panel(build)}</body></html>"
    )


def _error_text(build: Build) -> str:
    return "build failed:\n" + "".join(f"  {problem}\n" for problem in build.errors)


# ------------------------------------------------------------------------ the command


def serve(
    issue_dir: Path | str, port: int = 8000, open_browser: bool = False, log: Log = print
) -> None:
    """Run the preview until Ctrl-C, which stops it cleanly."""
    server = PreviewServer(issue_dir, port, log=log)
    try:
        server.start()
        log(f"previewing {shown_path(server.issue_dir)} at {server.url} (Ctrl-C to stop)")
        if open_browser:
            webbrowser.open(server.url)
        threading.Event().wait()
    except KeyboardInterrupt:
        log("preview stopped")
    finally:
        server.stop()
