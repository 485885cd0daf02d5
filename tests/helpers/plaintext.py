"""The plaintext part's line rule, shared by the tests that read a build's email.txt.

A line may be at most 72 display columns wide (``linebreak.display_width``: wide
CJK characters count two, combining marks such as Arabic vowel signs none),
except:

- a line that is one URL alone, optionally indented and after a ``[n]``
  reference marker: URLs are never broken, so a long one overflows;
- a line of a code block: code is kept verbatim (indented, never re-wrapped).
  A line counts as code only when it is, after at least 4 spaces of
  indentation, exactly a line of one of the issue's code blocks (which may
  itself start with spaces: a struct's fields).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

from dispatch_mail.project.markup import CodeBlock, Markdown
from dispatch_mail.render.linebreak import display_width

WIDTH = 72
URL_LINE = re.compile(r"\s*(?:\[\d+\] )?(?:https?|mailto):\S+")
CODE_INDENT = "    "


def walk(value: Any) -> Iterator[Any]:
    """Every value in an issue model: dataclass fields, lists and tuples, depth first."""
    yield value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from walk(getattr(value, field.name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk(item)


def code_blocks(issue: Any) -> list[CodeBlock]:
    """Every code block of the issue's Markdown fields (the intro, Markdown sections)."""
    return [
        block
        for value in walk(issue)
        if isinstance(value, Markdown)
        for block in value.blocks
        if isinstance(block, CodeBlock)
    ]


def code_lines(issue: Any) -> set[str]:
    return {line for block in code_blocks(issue) for line in block.text.splitlines() if line}


def is_code_line(line: str, code: set[str]) -> bool:
    for known in code:
        indent = line[: len(line) - len(known)]
        if line.endswith(known) and len(indent) >= len(CODE_INDENT) and not indent.strip(" "):
            return True
    return False


def long_lines(text: str, issue: Any) -> list[tuple[int, str]]:
    """The lines of ``text`` that break the rule, with their widths."""
    code = code_lines(issue)
    return [
        (display_width(line), line)
        for line in text.splitlines()
        if display_width(line) > WIDTH
        and not URL_LINE.fullmatch(line)
        and not is_code_line(line, code)
    ]
