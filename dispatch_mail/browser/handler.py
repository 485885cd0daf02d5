"""The HTTP side of `dispatch preview`: a fixed set of paths on 127.0.0.1, never a file.

No URL is mapped to the file system, so no path can reach the project's files;
a Host check keeps a DNS-rebinding page from reading the unpublished issue.
Connections come through ``connections.Intake``, so no client can hold more than
its share of threads: a handler starts with the request head already read.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import socket
import socketserver
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote

from dispatch_mail.browser.builds import Build, LiveBuild
from dispatch_mail.browser.connections import Address, Intake, Limits, StreamSlots
from dispatch_mail.browser.pages import (
    SCHEMES,
    error_page,
    error_text,
    force_color_scheme,
    index_page,
    shell_page,
)

if TYPE_CHECKING:
    from dispatch_mail.browser.server import PreviewServer

HOST = "127.0.0.1"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
_EMAIL_CSP = (
    "default-src * data: blob:; style-src * 'unsafe-inline'; script-src 'none'; object-src 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
_SHELL_CSP = (
    "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
    "frame-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


class PreviewHTTPServer(HTTPServer):
    """The server of one preview: it does no DNS lookups and answers within ``limits``."""

    request_queue_size = 128  # connections the kernel holds until accepted: they come in bursts
    preview: PreviewServer

    def __init__(self, address: tuple[str, int], limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        super().__init__(address, PreviewHandler)
        self.streams = StreamSlots(self.limits.streams)
        self.intake = Intake(self._answer, self.handle_error, self.limits)

    def process_request(self, request: object, client_address: Address) -> None:
        if isinstance(request, socket.socket):  # always, for a TCP server
            self.intake.admit(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        intake: Intake | None = getattr(self, "intake", None)  # absent if binding failed
        if intake is not None:
            intake.close()

    def _answer(self, sock: socket.socket, address: Address, head: bytes) -> None:
        PreviewHandler(sock, address, self, head)

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


Route = Callable[[Build, dict[str, str]], _Response]


class PreviewHandler(BaseHTTPRequestHandler):
    """Answers GET and HEAD for the shell, the email's parts, the status and the event stream."""

    server: PreviewHTTPServer
    server_version = "dispatch-preview"
    sys_version = ""

    def __init__(
        self,
        request: socket.socket,
        client_address: Address,
        server: PreviewHTTPServer,
        head: bytes = b"",
    ) -> None:
        self.head = head
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.limits.write_seconds)  # the head is read already
        self.rfile.close()
        self.rfile = io.BytesIO(self.head)  # HTTP/1.0, one request: nothing follows the head

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would bury the build messages

    def _answer(self) -> None:
        preview = self.server.preview
        if not self._host_allowed():
            # DNS rebinding: a page whose name now points at 127.0.0.1 must not read the preview.
            refusal = b"this preview answers only to 127.0.0.1 and localhost\n"
            return self._send(_Response(403, TEXT, refusal))
        target = self.path.split("#", 1)[0]
        path, _, query = target.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        live: LiveBuild | None = preview.live(preview.issue_dir.name)
        if preview.several:  # an index at /, each issue under /<slug>/
            if path == "/":
                return self._send(self._index(preview))
            if path == "/status.json":
                statuses = [one.latest.status() for one in preview.lives.values()]
                return self._send(_Response(200, "application/json", _json(statuses)))
            slug, slash, rest = path[1:].partition("/")
            live = preview.live(unquote(slug))
            if live is None:
                return self._send(_Response(404, TEXT, b"not found\n"))
            if not slash:
                location = {"Location": f"/{quote(live.issue_dir.name)}/"}
                return self._send(_Response(301, TEXT, b"moved\n", location))
            path = "/" + rest
        assert live is not None
        if path == "/events":
            since = params.get("since") or self.headers.get("Last-Event-ID")
            return self._events(preview, live, since)
        routes: dict[str, Route] = {
            "/": self._shell,
            "/email.html": self._email_html,
            "/email.txt": self._email_text,
            "/email.eml": self._email_eml,
            "/status.json": self._status,
        }
        route = routes.get(path)
        if route is None:
            return self._send(_Response(404, TEXT, b"not found\n"))
        self._send(route(live.latest, params))

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

    def _index(self, preview: PreviewServer) -> _Response:
        nonce = secrets.token_urlsafe(16)
        body = index_page([live.latest for live in preview.lives.values()], nonce)
        csp = {"Content-Security-Policy": _SHELL_CSP.format(nonce=nonce)}
        return _Response(200, HTML, body.encode("utf-8"), csp)

    def _shell(self, build: Build, params: dict[str, str]) -> _Response:
        nonce = secrets.token_urlsafe(16)
        preview = self.server.preview
        others = [live.latest for live in preview.lives.values()] if preview.several else None
        body = shell_page(build, nonce, others).encode("utf-8")
        csp = {"Content-Security-Policy": _SHELL_CSP.format(nonce=nonce)}
        return _Response(200, HTML, body, csp)

    def _email_html(self, build: Build, params: dict[str, str]) -> _Response:
        scheme = params.get("scheme")
        if scheme is not None and scheme not in SCHEMES:
            return _Response(400, TEXT, b"scheme is light or dark\n")
        if not build.ok:
            return _Response(500, HTML, error_page(build).encode("utf-8"))
        email = force_color_scheme(build.html, scheme) if scheme else build.html
        return _Response(200, HTML, email.encode("utf-8"), {"Content-Security-Policy": _EMAIL_CSP})

    def _email_text(self, build: Build, params: dict[str, str]) -> _Response:
        if not build.ok:
            return _Response(500, TEXT, error_text(build).encode("utf-8"))
        return _Response(200, TEXT, build.text.encode("utf-8"))

    def _email_eml(self, build: Build, params: dict[str, str]) -> _Response:
        if not build.ok:
            return _Response(500, TEXT, error_text(build).encode("utf-8"))
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", build.slug) or "email"
        disposition = {"Content-Disposition": f'inline; filename="{filename}.eml"'}
        return _Response(200, "message/rfc822", build.eml, disposition)

    def _status(self, build: Build, params: dict[str, str]) -> _Response:
        return _Response(200, "application/json", _json(build.status()))

    # ---------------------------------------------------------------- live reload

    def _events(self, preview: PreviewServer, live: LiveBuild, since: str | None) -> None:
        """Server-Sent Events: `reload` after every build, a comment now and then to stay open.

        The stream ends when the page goes away, when the preview stops, and when newer
        streams need its place (the page's EventSource then reconnects).
        """
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command == "HEAD":
            return
        build = live.latest
        ended = self.server.streams.open()
        check = self.server.limits.stream_check_seconds
        try:
            self.wfile.write(b"retry: 1000\n\n")
            if since and since != build.version:  # rebuilt (or restarted) since that page was made
                self.wfile.write(_reload_event(build))
            keepalive_at = time.monotonic() + preview.keepalive
            while True:
                wait = min(max(keepalive_at - time.monotonic(), 0.0), check)
                newer = live.wait_for_build(build.number, wait)
                if preview.closing or ended.is_set() or self._page_gone():
                    return
                if newer is not None:
                    build = newer
                    self.wfile.write(_reload_event(build))
                elif time.monotonic() >= keepalive_at:
                    self.wfile.write(b": keep-alive\n\n")
                    keepalive_at = time.monotonic() + preview.keepalive
        except (ConnectionError, TimeoutError, OSError):
            return  # the page closed or reloaded
        finally:
            self.server.streams.close(ended)

    def _page_gone(self) -> bool:
        """Whether the client closed its end: a page that reloaded must not hold a stream."""
        sock: socket.socket = self.connection
        try:
            sock.settimeout(0.0)
            try:
                return sock.recv(1, socket.MSG_PEEK) == b""
            finally:
                sock.settimeout(self.server.limits.write_seconds)
        except (BlockingIOError, InterruptedError):
            return False  # nothing to read: still open
        except OSError:
            return True


def _json(value: object) -> bytes:
    return json.dumps(value, indent=2).encode("utf-8")


def _reload_event(build: Build) -> bytes:
    data = json.dumps({"build": build.number, "ok": build.ok})
    return f"id: {build.version}\nevent: reload\ndata: {data}\n\n".encode()
