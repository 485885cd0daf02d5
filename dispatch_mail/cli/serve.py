"""`dispatch serve`: the one-click unsubscribe endpoint, its confirmation page, and the webhooks."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import echo


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; another than loopback only when you name it (behind a proxy).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding the unsubscribe-token secret (else DISPATCH_UNSUBSCRIBE_SECRET).",
)
@click.option(
    "--previous-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File of rotated-out secrets, one per line, whose links still work "
    "(also DISPATCH_UNSUBSCRIBE_PREVIOUS_SECRET).",
)
@click.option(
    "--database",
    metavar="URL",
    help="The suppression store (else DISPATCH_DATABASE_URL, else the project's SQLite file).",
)
@handle_errors
def serve(
    host: str,
    port: int,
    secret_file: Path | None,
    previous_secret_file: Path | None,
    database: str | None,
) -> int:
    """Answer the unsubscribe links (RFC 8058 one-click and a confirmation page) and webhooks.

    Serves the path of footer.unsubscribe_url, whatever host name it is reached
    by: put it behind a reverse proxy with TLS (docs/unsubscribe.md). Runs in the
    foreground until Ctrl-C or SIGTERM.

    \b
    Example:
      dispatch serve --port 8080
      dispatch serve --host 0.0.0.0 --previous-secret-file old-secrets.txt
    """
    from dispatch_mail.endpoint.server import serve as run_server
    from dispatch_mail.endpoint.startup import project_from_environment

    run_server(
        project_from_environment(),
        host=host,
        port=port,
        secret_file=secret_file,
        previous_file=previous_secret_file,
        database=database,
        announce=echo,
    )
    return 0
