"""The command line: options only. Each command calls one library function and prints its result.

Exit codes: 0 ok, 1 content or delivery errors, 2 usage errors, 3 the relay refused our TLS or
login, 130 interrupted
(``cli/errors.py`` is the one place that decides them).
"""

from __future__ import annotations

import click

from dispatch_mail.cli.author import add, init, new
from dispatch_mail.cli.browse import preview, screenshot
from dispatch_mail.cli.build import build
from dispatch_mail.cli.check import check
from dispatch_mail.cli.publish import archive, export
from dispatch_mail.cli.send import send
from dispatch_mail.cli.status import status
from dispatch_mail.version import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dispatch")
def main() -> None:
    """Assemble, check and send an email newsletter from files kept in git.

    \b
    dispatch build issues/2026-q1        render one issue into build/2026-q1/
    dispatch build --all                 render every issue
    """


for _command in (build, check, send, status, preview, screenshot, archive, init, new, add, export):
    main.add_command(_command)
