"""`dispatch preview` and `dispatch screenshot`: the issue in a browser."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import echo


@click.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--open", "open_browser", is_flag=True, help="Open the preview in the default browser."
)
@handle_errors
def preview(issue_dir: Path, port: int, open_browser: bool) -> int:
    """Serve the issue on 127.0.0.1, rebuilding and reloading on every change.

    Switches in the page show the HTML at phone and desktop width, in dark mode,
    and the plaintext part. Edits to the manifest, dispatch.yaml or a template
    rebuild the issue and reload the browser; build errors show in the page.

    \b
    Example:
      dispatch preview issues/2026-q1 --open
    """
    from dispatch_mail.browser.server import serve

    serve(issue_dir, port=port, open_browser=open_browser, log=lambda line: echo(line, err=True))
    return 0


@click.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Folder for the PNGs (default build/<slug>/).",
)
@click.option(
    "--chromium",
    type=click.Path(dir_okay=False),
    envvar="DISPATCH_CHROMIUM",
    help="Chromium executable (default: Debian's /usr/bin/chromium).",
)
@handle_errors
def screenshot(issue_dir: Path, out_dir: Path | None, chromium: str | None) -> int:
    """Screenshots in headless Chromium: desktop.png, mobile.png (375 px) and dark.png.

    \b
    Example:
      dispatch screenshot issues/2026-q1 --out /tmp/shots
    """
    from dispatch_mail.browser.screenshot import take_screenshots
    from dispatch_mail.publish.build import build_issue

    result = build_issue(issue_dir, write=False)
    target = out_dir or (result.out_dir)
    for path in take_screenshots(result.rendered.html, target, chromium=chromium).values():
        echo(f"wrote {path}")
    return 0
