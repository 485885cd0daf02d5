"""`dispatch init`, `new` and `add`: starting a newsletter, an issue, an item."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.options import rendering_only
from dispatch_mail.cli.output import echo


def _one_line(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An --install-spec goes into one line of YAML and shell: no line breaks, not blank."""
    if value is not None and (not value.strip() or any(c in value for c in "\r\n")):
        raise click.BadParameter("must be one non-empty line, as pip takes it")
    return value.strip() if value else None


@click.command()
@click.argument("folder", required=False, default=".", type=click.Path(path_type=Path))
@click.option(
    "--name", default="Example Newsletter", show_default=True, help="The newsletter's name."
)
@click.option(
    "--install-spec",
    metavar="SPEC",
    callback=_one_line,
    help="How the CI workflow installs dispatch, as pip takes it, e.g. "
    "'dispatch-mail @ git+https://…@v1.2'. Default: where this dispatch came from "
    "(an index's version, a git URL and commit); otherwise a line marked FILL IN.",
)
@handle_errors
def init(folder: Path, name: str, install_spec: str | None) -> int:
    """Start a newsletter project: dispatch.yaml, templates/, a first issue, .gitignore,
    a CI workflow.

    Refuses to overwrite any existing file.

    \b
    Example:
      dispatch init my-newsletter --name "My Newsletter"
      dispatch init my-newsletter --install-spec "dispatch-mail @ git+https://…@v0.1.0"
    """
    from dispatch_mail.authoring.install_spec import given, running_install_spec
    from dispatch_mail.authoring.scaffold import init_project

    install = given(install_spec) if install_spec else running_install_spec()
    created = init_project(folder, name, install=install)
    for path in created.files:
        echo(f"created {path}")
    if not install.known:
        workflow = next(p for p in created.files if p.name == "newsletter.yml")
        echo(
            f"note: {workflow}: fill in how CI installs dispatch (the FILL IN line): this "
            f"dispatch runs from {install.source}, which CI cannot reach "
            "(--install-spec SPEC writes it in at init)",
            err=True,
        )
    echo(
        "next: edit dispatch.yaml, then `dispatch build issues/<slug>` and "
        "`dispatch preview issues/<slug>`"
    )
    return 0


@click.command()
@click.argument("slug", required=False)
@click.option(
    "--from",
    "previous",
    type=click.Path(path_type=Path),
    help="The issue to start from (default: the newest).",
)
@handle_errors
def new(slug: str | None, previous: Path | None) -> int:
    """Start issues/SLUG/issue.yaml from the previous issue's structure, with its items emptied.

    A SLUG that names a period dates the issue: 2027-01 (the 1st of the month),
    2027-q1 (the quarter's first day), 2027-w05 (that ISO week's Monday) or
    2027-01-04. Without SLUG, the issue is the period after the newest one, at
    the cadence the issues show (monthly, quarterly, weekly), and says so. Links
    the owner must replace become https://example.invalid/… placeholders, which
    `dispatch build` and `dispatch check` point out.

    \b
    Example:
      dispatch new                 # the next period after the last issue
      dispatch new 2026-q2
      dispatch new 2026-q2 --from issues/2026-q1
    """
    from dispatch_mail.authoring.scaffold import new_issue
    from dispatch_mail.project.paths import shown_path

    with rendering_only("new"):  # a bad smtp: section does not stop writing an issue
        started = new_issue(slug, Path.cwd(), previous)
    target = started.folder
    if started.guess is not None:
        guess = started.guess
        echo(
            f"new issue {target.name} ({guess.cadence}, after {guess.after}): {shown_path(target)}/"
        )
    echo(
        f"created {shown_path(target / 'issue.yaml')}, dated {started.date.isoformat()}; "
        f"`dispatch build {shown_path(target)}` lists the fields to fill in"
    )
    return 0


@click.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.argument("url", required=False)
@click.option(
    "--section",
    help="The section's heading, id or kind (default: the first reading list or links section).",
)
@click.option("--title", help="Add the item by hand with this title: nothing is fetched.")
@click.option(
    "--url", "typed_url", metavar="URL", help="With --title: the item's link (or give URL)."
)
@click.option("--note", help="With --title: the item's text, in Markdown as the manifest takes it.")
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
    url: str | None,
    section: str | None,
    title: str | None,
    typed_url: str | None,
    note: str | None,
    timeout: float,
    keep_url: bool,
    allow_private: bool,
) -> int:
    """Append an item to a section of the issue: fetched from URL, or typed in with --title.

    One issue: the one whose issue.yaml is edited (comments and layout kept).

    Fetched: the page's title and description become the item, as plain text (its
    Markdown characters escaped). Pages on this machine or a private network are
    refused unless --allow-private is given. By hand (--title, --url, --note):
    nothing is fetched, and the note is kept as written.

    \b
    Example:
      dispatch add issues/2026-q2 https://example.org/post --section "Ecosystem reading list"
      dispatch add issues/2026-q2 --title "Release notes" --url https://example.org/notes \\
          --note "What changed, and why." --section "Reading list"
    """
    from dispatch_mail.authoring.curate import add_item, add_link
    from dispatch_mail.authoring.fetch import BY_HAND_HINT
    from dispatch_mail.errors import FetchError, UsageError

    if url and typed_url and url != typed_url:
        raise UsageError(f"two URLs given ({url} and --url {typed_url}): give one")
    if title is not None:
        link = typed_url or url
        if not link:
            raise UsageError("an item added by hand needs its link: --url URL")
        with rendering_only("add"):
            label = add_item(issue_dir, title, link, note, section)
        echo(f"added {' '.join(title.split())!r} to {label}")
        if not note:
            echo("note: no --note: write the item's text yourself", err=True)
        return 0
    if typed_url or note is not None:
        raise UsageError("--url and --note add an item by hand: give its --title too")
    if not url:
        raise UsageError("give the URL to fetch, or add the item by hand with --title and --url")
    try:
        with rendering_only("add"):
            label, page = add_link(
                issue_dir,
                url,
                section,
                timeout=timeout,
                keep_url=keep_url,
                allow_private=allow_private,
            )
    except FetchError as exc:
        if exc.hint != BY_HAND_HINT:
            raise
        advice = f'add it by hand with --title "…" --url {url} [--note "…"]'
        raise FetchError(f"{exc}; {advice}", exc.url) from None
    echo(f"added {page.title or page.url!r} to {label}")
    if not page.description:
        echo("note: the page has no description: write the item's text yourself", err=True)
    return 0
