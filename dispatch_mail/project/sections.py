"""Which sections of ``dispatch.yaml`` the running command reads: the others never block it.

A command that renders (build, check, preview, screenshot, archive, export) never reads the
SMTP profiles, the lists or the endpoint's settings, so a typo there must not stop it: while
it runs (:func:`not_using`), problems in those sections are warnings, and the sections are
read as if absent. ``send`` declares nothing, so every problem still stops it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from dispatch_mail.errors import Problem
from dispatch_mail.project.schema import section_of

# the sections that only sending, return mail and the unsubscribe endpoint read
SENDING_SECTIONS = frozenset(
    {"smtp", "lists", "dkim", "suppressions", "bounces", "deferrals", "unsubscribe"}
)


@dataclasses.dataclass
class _Unused:
    command: str
    sections: frozenset[str]
    warn: Callable[[str], None]
    warned: set[str] = dataclasses.field(default_factory=set)


# Process-wide, not a ContextVar: the preview rebuilds in its watcher thread, which must see it.
_current: _Unused | None = None
_lock = threading.Lock()


@contextmanager
def not_using(
    command: str, warn: Callable[[str], None], sections: frozenset[str] = SENDING_SECTIONS
) -> Iterator[None]:
    """While ``command`` runs, problems in ``sections`` are handed to ``warn``, once each.

    The line handed over is ``<problem> (not used by <command>)``.
    """
    global _current
    previous, _current = _current, _Unused(command, sections, warn)
    try:
        yield
    finally:
        _current = previous


def set_aside(problems: Iterable[Problem]) -> tuple[list[Problem], set[str]]:
    """The problems that stop the running command, and the sections whose problems don't.

    The problems set aside are warned about (each once per run).
    """
    unused = _current
    blocking: list[Problem] = []
    sections: set[str] = set()
    for problem in problems:
        section = section_of(problem.key)
        if unused is None or section not in unused.sections:
            blocking.append(problem)
            continue
        sections.add(section)
        line = f"{problem} (not used by {unused.command})"
        with _lock:
            if line in unused.warned:
                continue
            unused.warned.add(line)
        unused.warn(line)
    return blocking, sections
