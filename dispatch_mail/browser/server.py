"""`dispatch preview`: the issue served on 127.0.0.1, rebuilt and reloaded on every save.

Standard library only. The pieces: ``handler`` answers a fixed set of paths,
``watcher`` polls everything a build reads (the issue folder, ``dispatch.yaml``,
the newsletter's templates and the built-in theme), ``builds`` rebuilds in
memory when one changes and wakes every open page, which reloads through
Server-Sent Events. A failed build replaces the email with its problems; the
server keeps running, and saving the fix brings the email back.
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Self

from dispatch_mail.browser.builds import Build, LiveBuild, Log
from dispatch_mail.browser.connections import Limits
from dispatch_mail.browser.handler import HOST, PreviewHTTPServer
from dispatch_mail.browser.watcher import POLL_SECONDS, Watcher
from dispatch_mail.errors import UsageError
from dispatch_mail.project.loader import find_project_root, resolve_issue_dir
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.settings import PROJECT_FILE

KEEPALIVE_SECONDS = 15.0

__all__ = ["HOST", "Build", "Limits", "PreviewServer", "serve"]


class PreviewServer:
    """The preview of one issue: an HTTP server on 127.0.0.1 plus a watcher thread.

    ``port=0`` takes any free port; ``url`` and ``port`` tell which once started.
    Use ``start()``/``stop()`` or ``with PreviewServer(...) as server:``. ``limits``
    bounds what clients may hold (connections, threads, time, event streams).
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
        limits: Limits | None = None,
    ) -> None:
        if host != HOST:
            # The preview shows unpublished content and has no authentication.
            raise UsageError(f"the preview listens on {HOST} only, not on {host}")
        self.issue_dir = resolve_issue_dir(Path(issue_dir))
        self.root = find_project_root(self.issue_dir)
        self.log: Log = log or (lambda line: None)
        self.poll_interval = poll_interval
        self.keepalive = keepalive
        self.limits = limits or Limits()
        self._requested_port = port
        self._live = LiveBuild(self.issue_dir, self.root, self.log)
        self._watcher = Watcher(
            self.root / PROJECT_FILE,
            lambda: (self.issue_dir, *self._live.template_roots()),
            self._live.rebuild,
            stopping=self._live.stopping,
            log=self.log,
            poll_interval=poll_interval,
        )
        self._httpd: PreviewHTTPServer | None = None
        self._threads: list[threading.Thread] = []

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
        return self._live.stopping.is_set()

    @property
    def build(self) -> Build:
        return self._live.latest

    def start(self) -> Self:
        if self._httpd is not None or self.closing:
            raise RuntimeError("a preview starts once")
        try:
            httpd = PreviewHTTPServer((HOST, self._requested_port), self.limits)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {HOST}:{self._requested_port}: {exc.strerror or exc}",
                hint="port",
            ) from None
        httpd.preview = self
        self._httpd = httpd
        baseline = self._watcher.scan()  # before the build, so a save during it is not missed
        self.rebuild()
        self._spawn("dispatch-preview-http", lambda: httpd.serve_forever(poll_interval=0.1))
        self._spawn("dispatch-preview-watch", lambda: self._watcher.run(baseline))
        return self

    def stop(self) -> None:
        """Stop serving and watching; open event streams end. Safe to call twice."""
        self._live.close()
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

    def rebuild(self, changed: Iterable[str] = ()) -> Build:
        """Build the issue in memory, publish the outcome and wake the event streams."""
        return self._live.rebuild(changed)

    def wait_for_build(self, after: int, timeout: float | None) -> Build | None:
        """The newest build once its number differs from ``after``; None on timeout or stop."""
        return self._live.wait_for_build(after, timeout)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


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
