"""How the CLI writes to the terminal: one echo, colour only where it helps, NO_COLOR honoured."""

from __future__ import annotations

import os

import click


def color() -> bool | None:
    """False under NO_COLOR; None lets click decide by whether the stream is a terminal."""
    return False if os.environ.get("NO_COLOR") else None


def echo(message: str = "", *, err: bool = False, fg: str | None = None, nl: bool = True) -> None:
    click.secho(message, err=err, fg=fg, color=color(), nl=nl)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
