"""A YAML file → position-carrying nodes, refusing what could hurt before it is built.

We compose the YAML into nodes (never constructing Python objects from tags), so
every value keeps its line and column. Before composing, the parse events are
scanned: aliases are refused where they are written, before any "billion laughs"
expansion, and nesting is cut off before libyaml's recursive composer could
overflow the stack. Size and encoding are checked first of all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

from dispatch_mail.errors import Problem

MAX_FILE_BYTES = 1024 * 1024
# the schema needs under 10 levels; libyaml's composer recurses per level and crashes near 30,000
MAX_DEPTH = 50
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def join_key(key: str, name: str) -> str:
    """The dotted key path of ``name`` inside ``key`` (``sections[2]`` + ``url``)."""
    return f"{key}.{name}" if key else name


class _Mark(Protocol):
    """Where an event starts; PyYAML's pure-Python and libyaml marks both have these."""

    line: int
    column: int


def _position(mark: _Mark | None) -> tuple[int, int]:
    """1-based line and column of a mark; (0, 0) when YAML gives none."""
    return (mark.line + 1, mark.column + 1) if mark else (0, 0)


def compose_file(path: Path, shown: str) -> tuple[yaml.Node | None, list[Problem]]:
    """The file's root node (None when unusable) and the problems found on the way."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            message = f"file is {size:,} bytes; at most {MAX_FILE_BYTES:,} are read"
            return None, [Problem(shown, 0, 0, "", message)]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(shown, 0, 0, "", f"cannot read: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Problem(shown, line, col, "", "file is not valid UTF-8")]
    if not text.strip():
        return None, [Problem(shown, 0, 0, "", "file is empty")]
    try:
        problems, deep = _scan(text, shown)
        if deep:
            return None, problems
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        line, col = _position(exc.problem_mark or exc.context_mark)
        what = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in what:  # PyYAML ≥ 6.0.4 stops deep nesting itself, ahead of _scan
            what = f"nested more than {MAX_DEPTH} levels deep"
            return None, [Problem(shown, line, col, "", what)]
        return None, [Problem(shown, line, col, "", f"YAML syntax error: {what}")]
    except yaml.reader.ReaderError as exc:  # a character YAML forbids, such as NUL
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        message = f"YAML syntax error: character {what} is not allowed ({exc.reason})"
        return None, [Problem(shown, line, col, "", message)]
    except yaml.YAMLError as exc:
        return None, [Problem(shown, 0, 0, "", f"YAML error: {' '.join(str(exc).split())}")]
    if node is None:
        return None, [Problem(shown, 0, 0, "", "file is empty")]
    return node, problems


@dataclass
class _Open:
    """A collection the scan is inside: its key path, and where its next node sits."""

    mapping: bool
    path: str
    expect_key: bool = True  # mappings alternate key, value
    key: str = "?"  # the mapping's current key
    index: int = -1  # the sequence's current item


def _scan(text: str, shown: str) -> tuple[list[Problem], bool]:
    """Walk the parse events before composing: aliases where they are written, nesting too deep.

    The composer hands an alias back as the node it names, so only the events
    know where each ``*name`` stands. Composing stops at the first level past
    MAX_DEPTH: deeper, libyaml's recursive composer would overflow the stack.
    """
    problems: list[Problem] = []
    stack: list[_Open] = []
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        key = ""
        if stack:
            top = stack[-1]
            if top.mapping:
                key = top.path if top.expect_key else join_key(top.path, top.key)
                if top.expect_key:
                    top.key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                top.expect_key = not top.expect_key
            else:
                top.index += 1
                key = f"{top.path}[{top.index}]"
        line, col = _position(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            message = "YAML aliases (*name) are not allowed in dispatch files"
            problems.append(Problem(shown, line, col, key, message))
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep"
                return [Problem(shown, line, col, key, message)], True
            stack.append(_Open(isinstance(event, yaml.MappingStartEvent), key))
    return problems, False
