"""`dispatch init`, `new` and `add`: starting a newsletter, an issue, an item."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import echo


@click.command()
@click.argument("folder", required=False, default=".", type=click.Path(path_type=Path))
@click.option(
    "--name", default="Example Newsletter", show_default=True, help="The newsletter's name."
)
@handle_errors
def init(folder: Path, name: str) -> int:
    """Start a newsletter project: dispatch.yaml, templates/, a first issue, .gitignore,
    a CI workflow.

    Refuses to overwrite any existing file.

    \b
    Example:
      dispatch init my-newsletter --name "My Newsletter"
    """
    from dispatch_mail.authoring.scaffold import init_project

    created = init_project(folder, name)
    for path in created.files:
        echo(f"created {path}")
    echo(
        "next: edit dispatch.yaml, then `dispatch build issues/<slug>` and "
        "`dispatch preview issues/<slug>`"
    )
    return 0


@click.command()
@click.argument("slug")
@click.option(
    "--from",
    "previous",
    type=click.Path(path_type=Path),
    help="The issue to start from (default: the newest).",
)
@handle_errors
def new(slug: str, previous: Path | None) -> int:
    """Start issues/SLUG/issue.yaml from the previous issue's structure, with its items emptied.

    \b
    Example:
      dispatch new 2026-q2
      dispatch new 2026-q2 --from issues/2026-q1
    """
    from dispatch_mail.authoring.scaffold import new_issue
    from dispatch_mail.project.paths import shown_path

    target = new_issue(slug, Path.cwd(), previous)
    echo(
        f"created {shown_path(target / 'issue.yaml')}; "
        f"`dispatch build {shown_path(target)}` lists the fields to fill in"
    )
    return 0


@click.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.argument("url")
@click.option(
    "--section",
    help="The section's heading, id or kind (default: the first reading list or links section).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.5, 120),
    default=10.0,
    show_default=True,
    help="Seconds the whole fetch may take (lookup, redirects and reading the page).",
)
@click.option(
    "--keep-url", is_flag=True, help="Keep the URL as given instead of where its redirects lead."
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Also fetch from this machine and private networks (loopback, RFC 1918, link-local).",
)
@handle_errors
def add(
    issue_dir: Path,
    url: str,
    section: str | None,
    timeout: float,
    keep_url: bool,
    allow_private: bool,
) -> int:
    """Fetch a page and append it (title, description) to a section of the issue.

    The page's text is added as plain text (its Markdown characters escaped). Pages
    on this machine or a private network are refused unless --allow-private is given.

    \b
    Example:
      dispatch add issues/2026-q2 https://example.org/post --section "Ecosystem reading list"
    """
    from dispatch_mail.authoring.curate import add_link

    label, page = add_link(
        issue_dir, url, section, timeout=timeout, keep_url=keep_url, allow_private=allow_private
    )
    echo(f"added {page.title or page.url!r} to {label}")
    if not page.description:
        echo("note: the page has no description: write the item's text yourself", err=True)
    return 0
