"""YAML file → typed, frozen dataclasses, with every problem located by file, line, column and key.

One mechanism serves both ``dispatch.yaml`` and issue manifests: the dataclass
type hints say what is allowed, the field metadata says the limits. The file is
read as position-carrying nodes (``yaml_nodes.py``), so every problem says where
it is, duplicate keys are seen, and one run reports all of them.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

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
    documented_fields,
)
from dispatch_mail.project.markup import Inline, Markdown, parse_inline, parse_markdown
from dispatch_mail.project.urls import url_problem
from dispatch_mail.project.yaml_nodes import compose_file, join_key

DEFAULT_MAX_LENGTH = 20000
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0 and C1 but tab, newlines
_INVALID = object()
T = TypeVar("T")
# a field's metadata: its ``doc`` and limits (max_length, min, max, min_items, max_items)
Limits = Mapping[str, Any]


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


def load_file(
    path: Path, cls: type[T], display: str | None = None, *, leave_out: Iterable[str] = ()
) -> tuple[T | None, list[Problem]]:
    """Load and validate one YAML file into ``cls``; return (object or None, problems).

    ``leave_out`` names top-level keys read as if absent (their defaults apply): the
    sections a command does not use, so that their problems don't block it.
    """
    shown = display or str(path)
    node, problems = compose_file(path, shown)
    if node is None:
        return None, problems
    skipped = set(leave_out)
    if skipped and isinstance(node, yaml.MappingNode):
        kept = [
            (k, v)
            for k, v in node.value
            if not (isinstance(k, yaml.ScalarNode) and k.value in skipped)
        ]
        node = yaml.MappingNode(node.tag, kept, node.start_mark, node.end_mark)
    builder = _Builder(shown)
    value = builder.convert(node, cls, "", {})
    problems.extend(builder.problems)
    return (None if value is _INVALID or problems else value), problems


def section_of(key: str) -> str:
    """The top-level key a problem's dotted key path lies in (``smtp.default.port`` → ``smtp``)."""
    return re.split(r"[.\[]", key, maxsplit=1)[0]


def type_name(tp: Any) -> str:
    """How a field's type is named to the owner in messages and in the references."""
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
    if isinstance(getattr(tp, "KIND_NAME", None), str):  # a kind that names itself (blocks.py)
        return str(tp.KIND_NAME)
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
    def convert(self, node: yaml.Node, tp: Any, key: str, meta: Limits) -> Any:
        origin = get_origin(tp)
        if origin not in (Union, types.UnionType):
            # the composer hands an alias back as the very node it names; the event scan
            # (yaml_nodes) has reported the alias where it is written: it is not walked again
            if id(node) in self.seen:
                return _INVALID
            self.seen.add(id(node))
        if origin in (Union, types.UnionType):
            args = get_args(tp)
            if type(None) in args:
                if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
                    return None
                rest = [a for a in args if a is not type(None)]
                inner = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007 (a value)
                return self.convert(node, inner, key, meta)
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
        if isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp not in (Inline, Markdown):
            return self.dataclass(node, tp, key)
        return self.scalar(node, tp, key, meta)

    # ------------------------------------------------------------------ containers
    def sequence(self, node: yaml.Node, item_tp: Any, key: str, meta: Limits) -> Any:
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
                message = f"duplicate key (first set on line {first})"
                self.problem(knode, join_key(key, name), message)
                ok = False
                continue
            seen[name] = knode
            out.append((name, knode, vnode))
        return out, ok

    def mapping_of(self, node: yaml.Node, value_tp: Any, key: str, meta: Limits) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.problem(node, key, f"expected a mapping, got {_node_kind(node)}")
        pairs, ok = self.pairs(node, key)
        result: dict[str, Any] = {}
        for name, knode, vnode in pairs:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
                self.problem(
                    knode, join_key(key, name), "names may use letters, digits, '-', '_' and '.'"
                )
                result[name] = _INVALID
                continue
            result[name] = self.convert(vnode, value_tp, join_key(key, name), {})
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
                node, join_key(key, "kind"), f"missing; one of: {', '.join(SECTION_KINDS)}"
            )
        if not isinstance(kind_node, yaml.ScalarNode) or kind_node.tag.endswith(":null"):
            kinds = ", ".join(SECTION_KINDS)
            return self.problem(
                kind_node,
                join_key(key, "kind"),
                f"expected one of: {kinds}; got {_node_kind(kind_node)}",
            )
        kind = kind_node.value
        if kind not in SECTION_KINDS:
            hint = _close_matches(str(kind), SECTION_KINDS, cutoff=0.6)
            more = (
                f" (did you mean {hint[0]!r}?)" if hint else f"; one of: {', '.join(SECTION_KINDS)}"
            )
            return self.problem(
                kind_node, join_key(key, "kind"), f"unknown section kind {kind!r}{more}"
            )
        return self.dataclass(node, SECTION_KINDS[kind], key, skip=("kind",))

    def dataclass(self, node: yaml.Node, cls: type, key: str, skip: tuple[str, ...] = ()) -> Any:
        shorthand: str | None = getattr(cls, "SHORTHAND", None)  # a plain value sets this field
        if shorthand and isinstance(node, yaml.ScalarNode) and not node.tag.endswith(":null"):
            field = next(f for f in documented_fields(cls) if f.name == shorthand)
            self.seen.discard(id(node))  # the same node, converted once more as that field
            value = self.convert(node, field_types(cls)[shorthand], key, field.metadata)
            return value if value is _INVALID else cls(**{shorthand: value})
        if not isinstance(node, yaml.MappingNode):
            return self.problem(node, key, f"expected a mapping, got {_node_kind(node)}")
        pairs, ok = self.pairs(node, key)
        fields = {f.name: f for f in documented_fields(cls)}
        hints = field_types(cls)
        values: dict[str, Any] = {}
        for name, knode, vnode in pairs:
            if name in skip:
                continue
            if name not in fields:
                hint = _close_matches(name, fields, cutoff=0.6)
                more = (
                    f" (did you mean {hint[0]!r}?)"
                    if hint
                    else f"; known keys: {', '.join(fields)}"
                )
                self.problem(knode, join_key(key, name), f"unknown key{more}")
                ok = False
                continue
            value = self.convert(vnode, hints[name], join_key(key, name), fields[name].metadata)
            if value is _INVALID:
                ok = False
            values[name] = value
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and name not in values:
                self.problem(
                    node, join_key(key, name), f"missing (required {type_name(hints[name])})"
                )
                ok = False
        if not ok:
            return _INVALID
        made = cls(**values)
        found = made.field_problems() if hasattr(made, "field_problems") else []
        for name, message in found:  # rules between fields, each placed at its field's value
            at = next((v for n, _, v in pairs if n == name), node)
            self.problem(at, join_key(key, name), message)
        return _INVALID if found else made

    # ------------------------------------------------------------------ scalars
    def scalar_text(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return self.problem(node, key, f"expected text, got {_node_kind(node)}")
        if node.tag.endswith(":null"):
            return self.problem(node, key, "is empty; give a value or leave the key out")
        return node.value

    def scalar(self, node: yaml.Node, tp: Any, key: str, meta: Limits) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return self.problem(node, key, f"expected {type_name(tp)}, got {_node_kind(node)}")
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
        check = getattr(tp, "problem_in", None)  # a kind with a rule of its own (blocks.Moment…)
        if check is not None:
            problem = check(value)
            return self.problem(node, key, problem) if problem else tp(value)
        if tp in (Text, HeaderText):
            return tp(" ".join(value.split()))
        if tp is LongText:
            return LongText("\n".join(" ".join(line.split()) for line in value.splitlines()))
        if tp is Inline or tp is Markdown:
            parsed, link_problems = (parse_inline if tp is Inline else parse_markdown)(value)
            for message in link_problems:
                self.problem(node, key, message)
            return _INVALID if link_problems else parsed
        if tp in (Url, ImageUrl):
            problem = url_problem(value, https_only=tp is ImageUrl)
            return self.problem(node, key, problem) if problem else tp(value)
        if tp is EmailAddress:
            problem = validate_email(value)
            return self.problem(node, key, problem) if problem else EmailAddress(value)
        if tp is Color:
            return (
                Color(value)
                if _COLOR.match(value)
                else self.problem(node, key, f"{value!r} is not a colour like '#1a5fb4'")
            )
        # a bug in the model, said plainly
        return self.problem(node, key, f"unsupported field type {tp!r}")

    def number(self, node: yaml.ScalarNode, tp: type, key: str, meta: Limits) -> Any:
        raw = node.value.strip().replace("_", "")
        try:
            value = int(raw) if tp is int else float(raw)
        except ValueError:
            return self.problem(node, key, f"expected a {type_name(tp)}, got {node.value!r}")
        if tp is float and value != value:  # NaN
            return self.problem(node, key, "expected a number, got NaN")
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            return self.problem(node, key, f"{value} is out of range ({lo} to {hi})")
        return value


_HINTS: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of a model class (cached: the loader asks per mapping)."""
    if cls not in _HINTS:
        # localns: a field named ``date`` would otherwise shadow the type in the class namespace
        _HINTS[cls] = get_type_hints(cls, localns={"date": date})
    return _HINTS[cls]


def _close_matches(word: str, choices: Iterable[str], *, cutoff: float) -> list[str]:
    """The "did you mean" suggestion; difflib is imported only when a key is wrong."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
