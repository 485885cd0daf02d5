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



@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dispatch")
def main() -> None:
    """Assemble, check and send an email newsletter from files kept in git.

    \b
    dispatch build issues/2026-q1        render one issue into build/2026-q1/
    dispatch build --all                 render every issue
    """
