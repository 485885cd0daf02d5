"""`dispatch preview` and `dispatch screenshot`: issues in a browser."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.options import (
    chosen_issues,
    each_issue,
    issue_arguments,
    rendering_only,
    worst_exit,
)
from dispatch_mail.cli.output import echo


@click.command()
@issue_arguments
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
def preview(issue_dirs: tuple[Path, ...], every_issue: bool, port: int, open_browser: bool) -> int:
    """Serve issues on 127.0.0.1, rebuilding and reloading on every change.

    One issue: its page at /. Several, or none or --all (every issue): an
    index of them at /, each issue's page at /<slug>/ with a switcher to the others.
    Switches in the page show the HTML at phone and desktop width, in dark mode,
    and the plaintext part. Edits to the manifest, dispatch.yaml or a template
    rebuild the issue and reload the browser; build errors show in the page.

    \b
    Example:
      dispatch preview issues/2026-q1 --open
      dispatch preview issues/*/
      dispatch preview
    """
    from dispatch_mail.browser.server import serve

    every_issue = every_issue or not issue_dirs
    with rendering_only("preview"):
        folders = chosen_issues(issue_dirs, every_issue)
        serve(
            folders if len(folders) > 1 or every_issue else folders[0],
            port=port,
            open_browser=open_browser,
            log=lambda line: echo(line, err=True),
        )
    return 0


@click.command()
@issue_arguments
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Folder for the PNGs (default build/<slug>/; with several issues, <DIR>/<slug>/).",
)
@click.option(
    "--chromium",
    type=click.Path(dir_okay=False),
    envvar="DISPATCH_CHROMIUM",
    help="Chromium executable (default: Debian's /usr/bin/chromium).",
)
@handle_errors
def screenshot(
    issue_dirs: tuple[Path, ...], every_issue: bool, out_dir: Path | None, chromium: str | None
) -> int:
    """Screenshots in headless Chromium: desktop.png, mobile.png (375 px) and dark.png.

    Several issues (or --all): each is shot, every problem is reported, and the
    exit status is that of the worst.

    Text needs installed fonts: a character none has is drawn as an empty box,
    and a warning names it, its script and the Debian package to install
    (fonts-noto-core for Arabic and most scripts, fonts-noto-cjk, and
    fonts-noto-color-emoji); the PNGs are still written and the exit status is 0.

    \b
    Example:
      dispatch screenshot issues/2026-q1 --out /tmp/shots
      dispatch screenshot --all
    """
    from dispatch_mail.browser.screenshot import take_screenshots
    from dispatch_mail.publish.build import build_issue

    with rendering_only("screenshot"):
        folders = chosen_issues(issue_dirs, every_issue)
        several = len(folders) > 1 or every_issue

        def shoot(folder: Path) -> None:
            result = build_issue(folder, write=False)
            target = (
                result.out_dir if not out_dir else out_dir / folder.name if several else out_dir
            )
            shots = take_screenshots(result.rendered.html, target, chromium=chromium)
            for path in shots.values():
                echo(f"wrote {path}")
            for warning in shots.font_warnings():  # a warning: the pictures exist, boxes and all
                where = f"{folder.name}: " if several else ""
                echo(f"warning: {where}{warning}", err=True, fg="yellow")

        if not several:
            shoot(folders[0])
            return 0
        _done, failed = each_issue(folders, shoot)
    return worst_exit(failed)
