"""How the CLI writes to the terminal: one echo, colour only where it helps, NO_COLOR honoured."""

from __future__ import annotations

import os
import re

import click

from dispatch_mail.project.wording import plural

__all__ = ["color", "echo", "plural", "printable"]

# C0 controls but TAB and LF, DEL, the C1 controls, and the bidi overrides and isolates: a relay's
# reply or a subscriber's name must not move the cursor, retitle the terminal or reorder text.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Text from outside (replies, names, page titles) made safe to print on a terminal."""
    return _UNPRINTABLE.sub("\ufffd", text)


def color() -> bool | None:
    """False under NO_COLOR; None lets click decide by whether the stream is a terminal."""
    return False if os.environ.get("NO_COLOR") else None


def echo(message: str = "", *, err: bool = False, fg: str | None = None, nl: bool = True) -> None:
    """Every line the CLI prints goes through here, so no control character reaches the terminal."""
    click.secho(printable(message), err=err, fg=fg, color=color(), nl=nl)

