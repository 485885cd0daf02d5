"""The journal's SQL failures as one-line JournalErrors, for every method that touches the file."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from dispatch_mail.delivery.journal.file import explain
from dispatch_mail.errors import JournalError
from dispatch_mail.project.paths import shown_path

P = ParamSpec("P")
R = TypeVar("R")


class HasPath(Protocol):
    path: Path


S = TypeVar("S", bound=HasPath)


def writes(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """SQLite's failure to write (disk full, read-only) as one clear JournalError."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise JournalError(
                f"{shown_path(self.path)}: cannot write the journal: {explain(exc)}; "
                "what it recorded up to here is kept: fix that, then run the same command again",
                self.path,
            ) from None

    return wrapper


def reads(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise JournalError(
                f"{shown_path(self.path)}: cannot read the journal: {explain(exc)}", self.path
            ) from None

    return wrapper
