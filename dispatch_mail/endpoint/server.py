"""`dispatch serve`: the endpoint under uvicorn, in the foreground, until Ctrl-C or SIGTERM.

Imported only by `dispatch serve`. The socket is bound before uvicorn starts, so
``port=0`` takes a free port and the line that announces the address tells the
real one. uvicorn's access log is off
(it would log every token); the app logs its own lines without them. SIGINT and
SIGTERM stop the server gracefully and the process exits 0, as a service manager
expects of a clean stop.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn

from dispatch_mail.errors import UsageError
from dispatch_mail.project.settings import Project

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def serve(
    project: Project,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    secret_file: Path | None = None,
    previous_file: Path | None = None,
    database: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve until stopped; ``announce`` gets the one line with the address, then "stopped"."""
    from dispatch_mail.endpoint.app import create_app
    from dispatch_mail.endpoint.incoming import TokenPlace
    from dispatch_mail.endpoint.startup import open_endpoint

    endpoint = open_endpoint(
        project, secret_file=secret_file, previous_file=previous_file, database=database
    )
    try:
        app = create_app(endpoint)
        sock = bind(host, port)
    except BaseException:
        endpoint.store.close()
        raise
    _log_to_stderr()
    config = uvicorn.Config(
        app,
        access_log=False,
        log_config=None,
        log_level="warning",
        lifespan="on",
        server_header=False,
        proxy_headers=True,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
    )
    address, bound_port = sock.getsockname()[:2]
    shown_host = f"[{address}]" if ":" in address else address
    place = TokenPlace.of(project.footer.unsubscribe_url)
    where = place.path if place.query_name is None else f"{place.path}?{place.query_name}={{token}}"
    announce(
        f"serving http://{shown_host}:{bound_port}{where} "
        f"(webhooks under {project.unsubscribe.webhook_path.rstrip('/')}/…); Ctrl-C stops"
    )
    with sock:
        QuietExitServer(config).run(sockets=[sock])
    announce("stopped")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free one); UsageError when it is taken."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"cannot listen on {host}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host} port {port}: {exc.strerror or exc}", hint="port"
        ) from None
    sock.set_inheritable(True)
    return sock


def _log_to_stderr() -> None:
    """The app's lines on stderr, one per request; uvicorn's own only when something is wrong."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    for name, level in (("dispatch_mail.endpoint", logging.INFO), ("uvicorn", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


class QuietExitServer(uvicorn.Server):
    """uvicorn's server, but a signal that stopped it is not raised again afterwards.

    uvicorn re-raises SIGINT/SIGTERM once it has shut down, so the process would
    die of the signal (or a KeyboardInterrupt); a clean stop exits 0 instead.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for open connections
        else:
            self.should_exit = True
