"""YAML file → typed, frozen dataclasses, with every problem located by file, line, column and key.

One mechanism serves both ``dispatch.yaml`` and issue manifests: the dataclass
type hints say what is allowed, the field metadata says the limits. We compose
the YAML into nodes (never constructing Python objects from tags), so we keep
the position of everything, see duplicate keys, and refuse aliases before any
"billion laughs" expansion could happen.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
from datetime import date
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from dispatch_mail.errors import Problem
from dispatch_mail.project.issue import (
    SECTION_KINDS,
    Color,
    EmailAddress,
    HeaderText,
    ImageUrl,
    LongText,
    Section,
    Text,
    Url,
)
from dispatch_mail.project.markup import Inline, Markdown, parse_inline, parse_markdown
from dispatch_mail.project.urls import check_url

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = (
    50  # the schema needs under 10; libyaml's composer recurses per level and crashes near 30,000
)
DEFAULT_MAX_LENGTH = 20000
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)  # C0 and C1 controls but tab and newlines
_INVALID = object()


def validate_email(address: str) -> str | None:
    """Why ``address`` is not a usable email address, or None. Syntax only: no DNS."""
    if any(c in address for c in "\r\n"):
        return "contains a line break"
    if len(address) > 254:
        return "is longer than 254 characters"
    if not _EMAIL.match(address):
        return f"{address!r} is not a valid email address"
    if len(address.rsplit("@", 1)[0]) > 64:
        return "its local part is longer than 64 characters"
    return None


def load_file(path: Path, cls: type, display: str | None = None) -> tuple[Any, list[Problem]]:
    """Load and validate one YAML file into ``cls``; return (object or None, problems)."""
    shown = display or str(path)
    node, problems = _compose(path, shown)
    if node is None:
        return None, problems
    builder = _Builder(shown)
    value = builder.convert(node, cls, "", {})
    problems.extend(builder.problems)
    return (None if value is _INVALID or problems else value), problems


def _compose(path: Path, shown: str) -> tuple[yaml.Node | None, list[Problem]]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [
                Problem(
                    shown, 0, 0, "", f"file is {size:,} bytes; at most {MAX_FILE_BYTES:,} are read"
                )
            ]
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
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        if (
            "nesting depth" in what
        ):  # PyYAML ≥ 6.0.4 stops deep nesting itself, reading ahead of our scan
            return None, [
                Problem(shown, line, col, "", f"nested more than {MAX_DEPTH} levels deep")
            ]
        return None, [Problem(shown, line, col, "", f"YAML syntax error: {what}")]
    except yaml.reader.ReaderError as exc:  # a character YAML forbids, such as NUL
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [
            Problem(
                shown,
                line,
                col,
                "",
                f"YAML syntax error: character {what} is not allowed ({exc.reason})",
            )
        ]
    except yaml.YAMLError as exc:
        return None, [Problem(shown, 0, 0, "", f"YAML error: {' '.join(str(exc).split())}")]
    if node is None:
        return None, [Problem(shown, 0, 0, "", "file is empty")]
    return node, problems


def _scan(text: str, shown: str) -> tuple[list[Problem], bool]:
    """Walk the parse events before composing: aliases where they are written, and nesting too deep.

    The composer hands an alias back as the node it names, so only the events
    know where each ``*name`` stands. Composing stops at the first level past
    MAX_DEPTH: deeper, libyaml's recursive composer would overflow the stack.
    """
    problems: list[Problem] = []
    stack: list[
        list[Any]
    ] = []  # open collections: [is mapping, key path, next is a key, key name or index]
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        key = ""
        if stack:
            top = stack[-1]
            if top[0]:
                key = top[1] if top[2] else _join(top[1], top[3])
                if top[2]:
                    top[3] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                top[2] = not top[2]
            else:
                top[3] += 1
                key = f"{top[1]}[{top[3]}]"
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            message = "YAML aliases (*name) are not allowed in dispatch files"
            problems.append(Problem(shown, mark.line + 1, mark.column + 1, key, message))
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep"
                return [Problem(shown, mark.line + 1, mark.column + 1, key, message)], True
            stack.append([isinstance(event, yaml.MappingStartEvent), key, True, -1])
    return problems, False


def _type_name(tp: Any) -> str:
    names = {
        Text: "text",
        LongText: "text",
        HeaderText: "text",
        Inline: "text",
        Markdown: "Markdown text",
        Url: "URL",
        ImageUrl: "https URL",
        EmailAddress: "email address",
        Color: "colour",
        int: "whole number",
        float: "number",
        bool: "true or false",
        date: "date",
    }
    if tp in names:
        return names[tp]
    if get_origin(tp) in (list,):
        return "list"
    if get_origin(tp) in (dict,) or dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag.endswith(":null"):
        return "nothing (null)"
    return repr(node.value) if len(node.value) < 40 else "text"


class _Builder:
    def __init__(self, shown: str):
        self.shown = shown
        self.problems: list[Problem] = []
        self.seen: set[int] = set()

    def problem(self, node: yaml.Node, key: str, message: str) -> object:
        mark = node.start_mark
        self.problems.append(Problem(self.shown, mark.line + 1, mark.column + 1, key, message))
        return _INVALID

    # ------------------------------------------------------------------ dispatch
    def convert(self, node: yaml.Node, tp: Any, key: str, meta: dict) -> Any:
        origin = get_origin(tp)
        if origin not in (Union, types.UnionType):
            # the composer hands an alias back as the very node it names; _scan has
            # reported the alias where it is written, so it is not walked again
            if id(node) in self.seen:
                return _INVALID
            self.seen.add(id(node))
        if origin in (Union, types.UnionType):
            args = get_args(tp)
            if type(None) in args:
                if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
                    return None
                rest = [a for a in args if a is not type(None)]
                return self.convert(
                    node, rest[0] if len(rest) == 1 else Union[tuple(rest)], key, meta
                )
            if tp == Section:
                return self.section(node, key)
        if origin is Literal:
            value = self.scalar_text(node, key)
            if value is _INVALID:
                return value
            allowed = get_args(tp)
            if value not in allowed:
                return self.problem(
                    node, key, f"{value!r} is not one of: {', '.join(map(str, allowed))}"
                )
            return value
        if origin is list:
            return self.sequence(node, get_args(tp)[0], key, meta)
        if origin is dict:
            return self.mapping_of(node, get_args(tp)[1], key, meta)
        if dataclasses.is_dataclass(tp) and tp not in (Inline, Markdown):
            return self.dataclass(node, tp, key)
        return self.scalar(node, tp, key, meta)

    # ------------------------------------------------------------------ containers
    def sequence(self, node: yaml.Node, item_tp: Any, key: str, meta: dict) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            return self.problem(node, key, f"expected a list, got {_node_kind(node)}")
        lo, hi = meta.get("min_items", 0), meta.get("max_items", 1000)
        if len(node.value) < lo:
            return self.problem(node, key, f"needs at least {lo} item{'s' if lo > 1 else ''}")
        if len(node.value) > hi:
            return self.problem(node, key, f"has {len(node.value)} items; at most {hi} are allowed")
        item_meta = {k: v for k, v in meta.items() if k in ("max_length",)}
        values = [
            self.convert(child, item_tp, f"{key}[{i}]", item_meta)
            for i, child in enumerate(node.value)
        ]
        return _INVALID if any(v is _INVALID for v in values) else values

    def pairs(
        self, node: yaml.MappingNode, key: str
    ) -> tuple[list[tuple[str, yaml.Node, yaml.Node]], bool]:
        """The mapping's (name, key node, value node) and whether all keys were fine.

        Duplicate and non-text keys are reported and left out; the rest is still
        validated, so that one run reports every problem of the file.
        """
        out: list[tuple[str, yaml.Node, yaml.Node]] = []
        seen: dict[str, yaml.Node] = {}
        ok = True
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode) or knode.tag == "tag:yaml.org,2002:merge":
                self.problem(
                    knode, key, "keys must be plain names (no '<<' merges or complex keys)"
                )
                ok = False
                continue
            name = knode.value
            if name in seen:
                first = seen[name].start_mark.line + 1
                self.problem(knode, _join(key, name), f"duplicate key (first set on line {first})")
                ok = False
                continue
            seen[name] = knode
            out.append((name, knode, vnode))
        return out, ok

    def mapping_of(self, node: yaml.Node, value_tp: Any, key: str, meta: dict) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.problem(node, key, f"expected a mapping, got {_node_kind(node)}")
        pairs, ok = self.pairs(node, key)
        result: dict[str, Any] = {}
        for name, knode, vnode in pairs:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
                self.problem(
                    knode, _join(key, name), "names may use letters, digits, '-', '_' and '.'"
                )
                result[name] = _INVALID
                continue
            result[name] = self.convert(vnode, value_tp, _join(key, name), {})
        return _INVALID if not ok or any(v is _INVALID for v in result.values()) else result

    def section(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.problem(
                node, key, f"expected a section (a mapping with 'kind'), got {_node_kind(node)}"
            )
        kind_node = next(
            (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "kind"), None
        )
        if kind_node is None:
            return self.problem(
                node, _join(key, "kind"), f"missing; one of: {', '.join(SECTION_KINDS)}"
            )
        if not isinstance(kind_node, yaml.ScalarNode) or kind_node.tag.endswith(":null"):
            kinds = ", ".join(SECTION_KINDS)
            return self.problem(
                kind_node,
                _join(key, "kind"),
                f"expected one of: {kinds}; got {_node_kind(kind_node)}",
            )
        kind = kind_node.value
        if kind not in SECTION_KINDS:
            hint = difflib.get_close_matches(str(kind), SECTION_KINDS, n=1)
            more = (
                f" (did you mean {hint[0]!r}?)" if hint else f"; one of: {', '.join(SECTION_KINDS)}"
            )
            return self.problem(
                kind_node, _join(key, "kind"), f"unknown section kind {kind!r}{more}"
            )
        return self.dataclass(node, SECTION_KINDS[kind], key, skip=("kind",))

    def dataclass(self, node: yaml.Node, cls: type, key: str, skip: tuple[str, ...] = ()) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.problem(node, key, f"expected a mapping, got {_node_kind(node)}")
        pairs, ok = self.pairs(node, key)
        fields = {f.name: f for f in dataclasses.fields(cls) if "doc" in f.metadata}
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for name, knode, vnode in pairs:
            if name in skip:
                continue
            if name not in fields:
                hint = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
                more = (
                    f" (did you mean {hint[0]!r}?)"
                    if hint
                    else f"; known keys: {', '.join(fields)}"
                )
                self.problem(knode, _join(key, name), f"unknown key{more}")
                ok = False
                continue
            value = self.convert(vnode, hints[name], _join(key, name), dict(fields[name].metadata))
            if value is _INVALID:
                ok = False
            values[name] = value
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
            if required and name not in values:
                self.problem(
                    node, _join(key, name), f"missing (required {_type_name(hints[name])})"
                )
                ok = False
        if not ok:
            return _INVALID
        return cls(**values)

    # ------------------------------------------------------------------ scalars
    def scalar_text(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return self.problem(node, key, f"expected text, got {_node_kind(node)}")
        if node.tag.endswith(":null"):
            return self.problem(node, key, "is empty; give a value or leave the key out")
        return node.value

    def scalar(self, node: yaml.Node, tp: Any, key: str, meta: dict) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return self.problem(node, key, f"expected {_type_name(tp)}, got {_node_kind(node)}")
        if node.tag.endswith(":null"):
            return self.problem(node, key, "is empty; give a value or leave the key out")
        raw: str = node.value
        if tp is bool:
            low = raw.lower()
            if node.tag.endswith(":bool") or low in ("true", "false"):
                return low in ("true", "yes", "on", "y")
            return self.problem(node, key, f"expected true or false, got {raw!r}")
        if tp in (int, float):
            return self.number(node, tp, key, meta)
        if tp is date:
            try:
                return date.fromisoformat(raw.strip())
            except ValueError:
                return self.problem(node, key, f"{raw!r} is not a valid date (use YYYY-MM-DD)")
        # text kinds
        if _CONTROL.search(raw):
            return self.problem(node, key, "contains control characters")
        limit = meta.get("max_length", DEFAULT_MAX_LENGTH)
        if len(raw) > limit:
            return self.problem(
                node, key, f"is {len(raw):,} characters long; at most {limit:,} are allowed"
            )
        if tp is HeaderText and ("\r" in raw or "\n" in raw.rstrip("\n")):
            return self.problem(
                node, key, "must be one line: CR and LF are not allowed in a mail header"
            )
        value = raw.strip()
        if not value:
            return self.problem(node, key, "must not be empty")
        if tp in (Text, HeaderText):
            return tp(" ".join(value.split()))
        if tp is LongText:
            return LongText("\n".join(" ".join(line.split()) for line in value.splitlines()))
        if tp is Inline or tp is Markdown:
            parsed, errors = (parse_inline if tp is Inline else parse_markdown)(value)
            for error in errors:
                self.problem(node, key, error)
            return _INVALID if errors else parsed
        if tp in (Url, ImageUrl):
            error = check_url(value, https_only=tp is ImageUrl)
            return self.problem(node, key, error) if error else tp(value)
        if tp is EmailAddress:
            error = validate_email(value)
            return self.problem(node, key, error) if error else EmailAddress(value)
        if tp is Color:
            return (
                Color(value)
                if _COLOR.match(value)
                else self.problem(node, key, f"{value!r} is not a colour like '#1a5fb4'")
            )
        return self.problem(
            node, key, f"unsupported field type {tp!r}"
        )  # a bug in the model, said plainly

    def number(self, node: yaml.ScalarNode, tp: type, key: str, meta: dict) -> Any:
        raw = node.value.strip().replace("_", "")
        try:
            value = int(raw) if tp is int else float(raw)
        except ValueError:
            return self.problem(node, key, f"expected a {_type_name(tp)}, got {node.value!r}")
        if tp is float and value != value:  # NaN
            return self.problem(node, key, "expected a number, got NaN")
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            return self.problem(node, key, f"{value} is out of range ({lo} to {hi})")
        return value


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        # localns: a field named ``date`` would otherwise shadow the type in the class namespace
        _HINTS[cls] = get_type_hints(cls, localns={"date": date})
    return _HINTS[cls]
