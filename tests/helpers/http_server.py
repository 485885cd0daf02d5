"""A real web server on 127.0.0.1 for the tests that fetch pages (link checks, ``dispatch add``).

The test gives one function that answers a request, ``respond(method, path)``,
with a :class:`Reply`; the server records every request it gets, so a test can
also prove that nothing was fetched.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


@dataclass(frozen=True)
class Reply:
    """What the server answers: status, headers, body; ``delay`` seconds first (a slow site)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


Respond = Callable[[str, str], Reply]  # (method, path with query) -> the reply


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client gave up (a timeout test)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalHttpServer:
    """A ThreadingHTTPServer on 127.0.0.1 and a free port, serving in a daemon thread."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server's base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def _answer(self, body: bool) -> None:
                with server._lock:
                    server.requests.append((self.command, self.path))
                reply = server.respond(self.command, self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if body:
                    self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the tests' output stays theirs

        return Handler
