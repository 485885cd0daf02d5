"""The command line: options only. Each command calls the library and returns an exit code.

Exit codes: 0 ok, 1 content or delivery errors, 2 usage errors, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from functools import wraps
from pathlib import Path

import click

from . import __version__
from .errors import ContentError, DispatchError


def _color() -> bool | None:
    return False if os.environ.get("NO_COLOR") else None  # None: click decides by isatty


def echo(message: str = "", *, err: bool = False, fg: str | None = None) -> None:
    click.secho(message, err=err, fg=fg, color=_color())


def handle_errors(func):
    """The one place where errors become messages and exit codes; never a traceback."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            code = func(*args, **kwargs)
        except ContentError as exc:
            for problem in exc.problems:
                echo(f"error: {problem}", err=True, fg="red")
            echo(f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''} found; nothing was written", err=True)
            sys.exit(exc.exit_code)
        except DispatchError as exc:
            echo(f"error: {exc}", err=True, fg="red")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug of ours: say so in one line
            if os.environ.get("DISPATCH_DEBUG"):
                raise
            echo(f"internal error: {type(exc).__name__}: {exc} (set DISPATCH_DEBUG=1 for a traceback)", err=True, fg="red")
            sys.exit(1)
        sys.exit(code or 0)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dispatch")
def main() -> None:
    """Assemble, check and send an email newsletter from files kept in git.

    \b
    dispatch build issues/2026-q1        render one issue into build/2026-q1/
    dispatch build --all                 render every issue
    """


@main.command()
@click.argument("issue_dir", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Output folder (default: build/<slug>/; with --all, <DIR>/<slug>/).")
@click.option("--all", "build_every", is_flag=True, help="Build every issue under the project's issues/ folder.")
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings and errors.")
@handle_errors
def build(issue_dir: Path | None, out_dir: Path | None, build_every: bool, quiet: bool) -> int:
    """Render an issue into email.html, email.txt, email.mjml and email.eml.

    \b
    Example:
      dispatch build issues/2026-q1
      dispatch build issues/2026-q1 --out /tmp/preview
      dispatch build --all
    """
    from .build import describe
    from .errors import UsageError

    if build_every:
        from .api import build_all

        built, failed = build_all(issue_dir or Path.cwd(), out_dir)
        for result in built:
            _report(describe(result), result.warnings, quiet)
        for folder, exc in failed:
            problems = exc.problems if isinstance(exc, ContentError) else (exc,)
            for problem in problems:
                echo(f"error: {problem}", err=True, fg="red")
        if not quiet:
            echo(f"{len(built)} built, {len(failed)} failed")
        return 1 if failed else 0
    if issue_dir is None:
        raise UsageError("name an issue folder (e.g. issues/2026-q1) or use --all")
    from .api import build_issue

    result = build_issue(issue_dir, out_dir)
    _report(describe(result), result.warnings, quiet)
    return 0


def _report(summary: str, warnings: list[str], quiet: bool) -> None:
    if quiet:
        for warning in warnings:
            echo(f"warning: {warning}", err=True, fg="yellow")
    else:
        echo(summary)


if __name__ == "__main__":  # pragma: no cover
    main()
