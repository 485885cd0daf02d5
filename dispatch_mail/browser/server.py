"""`dispatch preview`: issues served on 127.0.0.1, rebuilt and reloaded on every save.

Standard library only. The pieces: ``handler`` answers a fixed set of paths,
``watcher`` polls everything a build reads (the issue folder, ``dispatch.yaml``,
the newsletter's templates and the built-in theme), ``builds`` rebuilds in
memory when one changes and wakes every open page, which reloads through
Server-Sent Events. A failed build replaces the email with its problems; the
server keeps running, and saving the fix brings the email back. One issue is served at
``/``; several at ``/<slug>/`` each, with an index of them at ``/``.
"""

from __future__ import annotations

import os
import sys
import threading
import webbrowser
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Self

from dispatch_mail.browser.builds import Build, LiveBuild, Log
from dispatch_mail.browser.connections import Limits
from dispatch_mail.browser.handler import HOST, PreviewHTTPServer
from dispatch_mail.browser.watcher import POLL_SECONDS, Watcher, is_within
from dispatch_mail.errors import UsageError
from dispatch_mail.project.loader import find_project_root, resolve_issue_dir
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.settings import PROJECT_FILE
from dispatch_mail.project.wording import plural

KEEPALIVE_SECONDS = 15.0

__all__ = ["HOST", "Build", "Limits", "PreviewServer", "open_in_browser", "serve"]

Issues = Path | str | Sequence[Path | str]


class PreviewServer:
    """The preview of one issue, or of several: an HTTP server on 127.0.0.1 plus a watcher thread.

    ``issue_dir`` is one folder (served at ``/``) or a sequence of them (an index at
    ``/``, each issue at ``/<slug>/``; a sequence of one is served that way too).

    ``port=0`` takes any free port; ``url`` and ``port`` tell which once started.
    Use ``start()``/``stop()`` or ``with PreviewServer(...) as server:``. ``limits``
    bounds what clients may hold (connections, threads, time, event streams).
    """

    def __init__(
        self,
        issue_dir: Issues,
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
        given = [issue_dir] if isinstance(issue_dir, (Path, str)) else list(issue_dir)
        self.several = not isinstance(issue_dir, (Path, str))
        folders = [resolve_issue_dir(Path(folder)) for folder in given]
        if not folders:
            raise UsageError("no issue to preview")
        self.issue_dir = folders[0]
        self.root = find_project_root(self.issue_dir)
        self.log: Log = log or (lambda line: None)
        self.poll_interval = poll_interval
        self.keepalive = keepalive
        self.limits = limits or Limits()
        self._requested_port = port
        self.lives: dict[str, LiveBuild] = {}
        for folder in folders:
            if find_project_root(folder) != self.root:
                raise UsageError(
                    f"{shown_path(folder)}: not an issue of {shown_path(self.root / PROJECT_FILE)}"
                )
            if folder.name in self.lives:
                raise UsageError(f"{shown_path(folder)}: a second issue named {folder.name!r}")
            self.lives[folder.name] = LiveBuild(folder, self.root, self.log)
        self._live = self.lives[self.issue_dir.name]
        self._watcher = Watcher(
            self.root / PROJECT_FILE,
            lambda: (
                *(live.issue_dir for live in self.lives.values()),
                *self._live.template_roots(),
            ),
            self.rebuild,
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
        """The newest build of the (first) issue."""
        return self._live.latest

    def live(self, slug: str) -> LiveBuild | None:
        """The issue of that folder name, if it is served."""
        return self.lives.get(slug)

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
        for live in self.lives.values():
            live.close()
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
        """Build in memory the issues a change concerns, publish them, wake the event streams.

        A change inside one issue's folder rebuilds that issue; any other change
        (dispatch.yaml, a template), or none given, rebuilds them all. Returns the
        first issue's newest build.
        """
        paths = set(changed)
        own = {
            live: {p for p in paths if is_within(p, live.issue_dir)} for live in self.lives.values()
        }
        shared = paths - set().union(*own.values())
        for live, mine in own.items():
            if not paths or shared or mine:
                live.rebuild(shared | mine)
        return self._live.latest

    def wait_for_build(self, after: int, timeout: float | None) -> Build | None:
        """The newest build once its number differs from ``after``; None on timeout or stop."""
        return self._live.wait_for_build(after, timeout)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


def open_in_browser(url: str) -> str:
    """Open ``url`` in the desktop's browser; say whether that happened.

    On Linux without a display, ``webbrowser`` would fall back to a text browser that
    takes over this terminal, or to nothing at all: it is not asked.
    """
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    opened = False
    if not headless:
        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
    if opened:
        return f"opened {url} in your browser"
    return f"could not open a browser here; open {url} yourself"


def serve(
    issue_dir: Issues, port: int = 8000, open_browser: bool = False, log: Log = print
) -> None:
    """Run the preview until Ctrl-C, which stops it cleanly."""
    server = PreviewServer(issue_dir, port, log=log)
    try:
        server.start()
        what = (
            plural(len(server.lives), "issue") if server.several else shown_path(server.issue_dir)
        )
        log(f"previewing {what} at {server.url} (Ctrl-C to stop)")
        if open_browser:
            log(open_in_browser(server.url))
        threading.Event().wait()
    except KeyboardInterrupt:
        log("preview stopped")
    finally:
        server.stop()
