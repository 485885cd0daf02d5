"""The command line: options only. Each command calls one library function and prints its result.

Exit codes: 0 ok, 1 content or delivery errors, 2 usage errors, 3 the relay refused our TLS or
login, 75 (send) some recipients deferred, 130 interrupted (``cli/errors.py`` is the one place
that decides them).

Command modules are imported when their command runs: `dispatch build` does not pay for
defining `send`'s two dozen options.
"""

from __future__ import annotations

from importlib import import_module

import click

from dispatch_mail.version import __version__

__all__ = ["main"]

# command → the module of cli/ that defines it; `dispatch --help` lists them in this order
COMMANDS = {
    "build": "build",
    "check": "check",
    "send": "send",
    "status": "status",
    "preview": "browse",
    "screenshot": "browse",
    "archive": "publish",
    "init": "author",
    "new": "author",
    "add": "author",
    "export": "publish",
    "suppressions": "suppressions",
    "serve": "serve",
    "bounces": "bounces",
}


class CommandGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = getattr(import_module(f"dispatch_mail.cli.{module}"), cmd_name)
        assert isinstance(command, click.Command)
        return command


# the conventions every command keeps, said once, at the end of `dispatch --help`
EPILOG = """Issues: build, check, preview, screenshot, export and status take one or more
issue folders, or --all (every issue of the project); each issue is processed,
every problem reported, and the exit status is that of the worst. send takes
one issue (a send is one issue to one list), and add the one issue it edits.

\b
Verbosity, the same in every command that has it:
  -v/--verbose  more detail (check's notes, build's stage timings)
  -q/--quiet    only warnings, errors and the summary line

Settings a command doesn't read (smtp, lists, dkim, suppressions, bounces,
deferrals, unsubscribe) only warn when they are wrong; send stops on them.
"""


@click.group(
    cls=CommandGroup,
    invoke_without_command=True,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="dispatch")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Assemble, check and send an email newsletter from files kept in git.

    \b
    dispatch build issues/2026-q1        render one issue into build/2026-q1/
    dispatch build --all                 render every issue
    """
    if ctx.invoked_subcommand is None:  # plain `dispatch`: the help, and no error
        click.echo(ctx.get_help(), color=ctx.color)
