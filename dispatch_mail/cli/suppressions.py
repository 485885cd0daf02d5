"""`dispatch suppressions`: list, add, remove, import and export who must not be mailed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dispatch_mail.cli.errors import handle_errors
from dispatch_mail.cli.output import echo, plural
from dispatch_mail.suppression.records import REASONS

REASON_CHOICE = click.Choice(list(REASONS))
F = TypeVar("F", bound=Callable[..., Any])


def store_options(func: F) -> F:
    """The options every subcommand shares: which project, which database."""
    func = click.option(
        "--database",
        "url",
        metavar="URL",
        help="A postgresql:// URL of the store (overrides DISPATCH_DATABASE_URL; "
        "default: the project's SQLite file).",
    )(func)
    return click.option(
        "--project",
        "project_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="The project folder (dispatch.yaml here or in a parent folder).",
    )(func)


@click.group()
def suppressions() -> None:
    """Who must not be mailed: unsubscribed, bounced, complained, or put there by hand.

    \b
    Example:
      dispatch suppressions list --reason hard-bounce
      dispatch suppressions add someone@example.org --reason manual
      dispatch suppressions import old-unsubscribes.csv --reason unsubscribed
    """


@suppressions.command("list")
@click.option("--reason", type=REASON_CHOICE, help="Only suppressions of this reason.")
@click.option(
    "--list", "list_name", metavar="NAME", help="Only those that apply to this list ('*' too)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Aligned columns, or a JSON list of objects.",
)
@store_options
@handle_errors
def list_command(
    reason: str | None, list_name: str | None, fmt: str, project_dir: Path, url: str | None
) -> int:
    """List the suppressions, oldest first."""
    from dispatch_mail.delivery.suppressions import as_record, list_suppressions

    records = [
        as_record(s)
        for s in list_suppressions(project_dir, reason=reason, list_name=list_name, url=url)
    ]
    if fmt == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return 0
    columns = ("email", "list", "reason", "source", "at", "issue")
    rows = [columns, *[tuple(r[c] or "" for c in columns) for r in records]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows if records else []:
        echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    echo(plural(len(records), "suppression"))
    return 0


@suppressions.command("add")
@click.argument("email")
@click.option("--reason", type=REASON_CHOICE, required=True, help="Why it is suppressed.")
@click.option(
    "--list",
    "list_name",
    metavar="NAME",
    help="Suppress it on this list only (default: '*', every list).",
)
@store_options
@handle_errors
def add(email: str, reason: str, list_name: str | None, project_dir: Path, url: str | None) -> int:
    """Suppress one address."""
    from dispatch_mail.delivery.suppressions import add_suppression

    entry, added = add_suppression(project_dir, email, reason=reason, list_name=list_name, url=url)
    where = "every list" if entry.list == "*" else f"list {entry.list}"
    echo(f"{entry.email}: {'suppressed' if added else 'already suppressed'} on {where}")
    return 0


@suppressions.command("remove")
@click.argument("email")
@click.option(
    "--list", "list_name", metavar="NAME", help="Lift it on this list only (default: on all)."
)
@store_options
@handle_errors
def remove(email: str, list_name: str | None, project_dir: Path, url: str | None) -> int:
    """Lift an address's suppressions (kept in the store's history)."""
    from dispatch_mail.delivery.suppressions import remove_suppression

    lifted = remove_suppression(project_dir, email, list_name=list_name, url=url)
    echo(f"{email.strip()}: {plural(lifted, 'suppression')} lifted")
    return 0


@suppressions.command("import")
@click.argument("csv_path", metavar="CSV", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--list",
    "list_name",
    metavar="NAME",
    help="Suppress the addresses on this list only (default: '*', every list).",
)
@click.option(
    "--reason",
    type=REASON_CHOICE,
    default="manual",
    show_default=True,
    help="The reason recorded for each address.",
)
@store_options
@handle_errors
def import_command(
    csv_path: Path, list_name: str | None, reason: str, project_dir: Path, url: str | None
) -> int:
    """Import a suppression file: a CSV with an email column, or one address a line."""
    from dispatch_mail.delivery.suppressions import import_suppressions

    result = import_suppressions(project_dir, csv_path, list_name=list_name, reason=reason, url=url)
    echo(
        f"{result.path}: {result.read} read, {result.added} added, "
        f"{result.already} already suppressed"
    )
    return 0


@suppressions.command("export")
@click.argument("csv_path", metavar="CSV", type=click.Path(dir_okay=False, path_type=Path))
@store_options
@handle_errors
def export(csv_path: Path, project_dir: Path, url: str | None) -> int:
    """Write every suppression to a CSV (email, list, reason, source, at, issue, evidence)."""
    from dispatch_mail.delivery.suppressions import export_suppressions
    from dispatch_mail.project.paths import shown_path

    count = export_suppressions(project_dir, csv_path, url=url)
    echo(f"{plural(count, 'suppression')} written to {shown_path(csv_path)}")
    return 0
