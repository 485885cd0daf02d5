"""Generate the manifest, configuration and command references from the code itself.

``python -m dispatch_mail.reference`` rewrites docs/manifest.md, docs/configuration.md
and docs/cli.md; a test fails when the committed files differ, so the docs cannot
drift from the code. Nothing imports this module at run time.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, Literal, Union, get_args, get_origin

from dispatch_mail.project.issue import SECTION_KINDS, Issue, Section, documented_fields
from dispatch_mail.project.schema import DEFAULT_MAX_LENGTH, field_types, type_name
from dispatch_mail.project.settings import Project
from dispatch_mail.project.yaml_nodes import MAX_FILE_BYTES

_PARSED_TEXT = ("Inline", "Markdown")  # dataclasses, but documented as kinds of text


def _is_model(tp: Any) -> bool:
    """A dataclass of the model that gets its own table (not a kind of text)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp.__name__ not in _PARSED_TEXT


def _describe_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if tp == Section or set(args) == set(get_args(Section)):
            return "section (see below)"
        return " or ".join(_describe_type(a) for a in args)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(tp))
    if origin is list:
        return f"list of {_describe_type(get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of name → {_describe_type(get_args(tp)[1])}"
    if _is_model(tp):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    if getattr(tp, "__name__", "") == "Inline":
        return "text (inline Markdown)"
    return type_name(tp)


def _default(f: dataclasses.Field[Any]) -> str:
    value: object
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "**required**"
    if value is None:
        return "optional"
    if dataclasses.is_dataclass(value):
        return "see below"
    return f"`{_yaml_value(value)}`"


def _yaml_value(value: object) -> str:
    """A default as the owner would write it in YAML (flow style), never a Python repr."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, enum.Enum):
        return _yaml_value(value.value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (str, int, float, PurePath)):
        return str(value)
    raise TypeError(f"no YAML rendering for a default of type {type(value).__name__}")


def _limits(f: dataclasses.Field[Any]) -> str:
    meta = f.metadata
    parts: list[str] = []
    if "min" in meta or "max" in meta:
        parts.append(f"{meta.get('min')}–{meta.get('max')}")
    if "max_length" in meta:
        parts.append(f"≤ {meta['max_length']:,} chars")
    if "min_items" in meta:
        parts.append(f"≥ {meta['min_items']} items")
    if "max_items" in meta:
        parts.append(f"≤ {meta['max_items']} items")
    return ", ".join(parts)


def _table(cls: type) -> list[str]:
    hints = field_types(cls)
    rows = ["| key | type | default | limits | meaning |", "|---|---|---|---|---|"]
    for f in documented_fields(cls):
        doc = str(f.metadata["doc"]).replace("|", "\\|").replace("\n", " ")
        kind = _describe_type(hints[f.name])
        rows.append(f"| `{f.name}` | {kind} | {_default(f)} | {_limits(f)} | {doc} |")
    return rows


def _nested(cls: type, seen: set[type], order: list[type], used_for: dict[type, str]) -> None:
    docs = {f.name: str(f.metadata.get("doc", "")) for f in dataclasses.fields(cls)}
    for name, tp in field_types(cls).items():
        stack = [tp]
        while stack:
            t = stack.pop()
            if get_origin(t) is not None:
                stack.extend(get_args(t))
            elif _is_model(t) and t not in seen:
                if t in SECTION_KINDS.values():
                    continue
                seen.add(t)
                order.append(t)
                used_for.setdefault(t, docs.get(name, ""))
                _nested(t, seen, order, used_for)


def _section_docs(cls: type, fallback: str = "") -> list[str]:
    """The first paragraph of the class docstring, on one line, else what its field says.

    A dataclass without a docstring gets its signature as ``__doc__``: never print that.
    """
    own = (cls.__doc__ or "").strip()
    if own.startswith(f"{cls.__name__}("):
        own = fallback.strip()
    summary = " ".join(own.split("\n\n")[0].split())
    return [summary, ""] if summary else []


def _nested_tables(*roots: type) -> list[str]:
    """A heading and a table for every dataclass the roots use, in order of first use."""
    seen: set[type] = set()
    order: list[type] = []
    used_for: dict[type, str] = {}
    for root in roots:
        _nested(root, seen, order, used_for)
    lines: list[str] = []
    for cls in order:
        docs = _section_docs(cls, used_for.get(cls, ""))
        lines += [f"## {cls.__name__}", "", *docs, *_table(cls), ""]
    return lines


def _generated_from(source: str) -> str:
    return f"<!-- Generated by `python -m dispatch_mail.reference` from {source}; do not edit. -->"


def manifest_reference() -> str:
    lines = [
        "# Issue manifest reference",
        "",
        _generated_from("dispatch_mail/project/issue.py"),
        "",
        "Each issue lives in `issues/<slug>/issue.yaml`; the folder name is the issue's slug.",
        "Every problem in a manifest is reported in one run as "
        "`file:line:column: key.path: message`.",
        "YAML anchors and aliases, `<<` merges and duplicate keys are refused; text is at most "
        f"{DEFAULT_MAX_LENGTH:,} characters unless a smaller limit is given; "
        f"files are at most {MAX_FILE_BYTES // 1024**2} MiB.",
        "",
        "**Text kinds.** *text* is one line of plain text "
        "(runs of spaces and line breaks fold to one space; the theme escapes it). "
        "Markup is CommonMark (read by markdown-it-py), with GFM tables and strikethrough. "
        "*text (inline Markdown)* allows `**strong**`, `*em*` or `_em_`, `~~struck~~`, "
        "`` `code` ``, `[link text](https://…)` (parentheses in a URL are fine when balanced) "
        "and `<https://…>` autolinks; `\\` escapes a marker. A title that is itself a link "
        "may not hold another. *Markdown text* adds paragraphs (blank line), `-` bullets and "
        "`1.` numbered lists (nested too), `#` headings, `>` quotes, fenced code "
        "(```` ```rust ````, highlighted) and indented code, tables, "
        "`![alt text](https://…)` images (the alt text is required; an image spans the text "
        "column, 536 px) and `---` rules. "
        "What a field may not hold (an image in a title, code in a quote, a list, a table or a "
        "second paragraph in a field of inline Markdown) is an error where it "
        "is written, never dropped; raw HTML stays text. "
        "Links may be http, https or mailto only; images must be https.",
        "",
        "## Issue",
        "",
        *_table(Issue),
        "",
    ]
    lines += _nested_tables(Issue, *SECTION_KINDS.values())
    lines += [
        "## Sections",
        "",
        "Every section has a `kind`; these keys are common to all kinds:",
        "",
    ]
    common = {f.name for f in documented_fields(SECTION_KINDS["stories"])} & {
        f.name for f in documented_fields(SECTION_KINDS["cta"])
    }
    rows = _table(SECTION_KINDS["stories"])
    lines += rows[:2] + [r for r in rows[2:] if r.split("`")[1] in common] + [""]
    for kind, cls in SECTION_KINDS.items():
        rows = _table(cls)
        own = [r for r in rows[2:] if r.split("`")[1] not in common]
        lines += [f"### `kind: {kind}`", "", *_section_docs(cls), *rows[:2], *own, ""]
    lines += [
        "## Derived, not typed",
        "",
        "- The masthead's date line is the issue's date in `date_format` of dispatch.yaml "
        "(by default the month and year, `March 2026`), written in the issue's language.",
        "- The stats line counts featured sections and stories as 'N stories' (the theme word "
        "`stories` in `strings:` of dispatch.yaml changes it), and adds "
        "'Reading list' (or the section's `stat`) for a reading list "
        "and '<region> roundup' for a roundup.",
        "- 'View this issue in your browser' and the archive links come from `base_url` "
        "in dispatch.yaml.",
        "- UTM parameters are added to every outbound http(s) link (never to mailto:), "
        "keeping parameters a link already has.",
        "",
    ]
    return "\n".join(lines)


def configuration_reference() -> str:
    lines = [
        "# dispatch.yaml reference",
        "",
        _generated_from("dispatch_mail/project/settings.py"),
        "",
        "`dispatch.yaml` sits at the root of a newsletter project; "
        "commands run in any folder below it find it.",
        "It is validated exactly like an issue manifest. "
        "Secrets never go here: SMTP credentials come from "
        "`DISPATCH_SMTP_USER` / `DISPATCH_SMTP_PASSWORD` "
        "and the unsubscribe-token secret from the environment.",
        "",
        "## Project",
        "",
        *_table(Project),
        "",
    ]
    lines += _nested_tables(Project)
    return "\n".join(lines)


def _help_markdown(text: str) -> str:
    """A click docstring as Markdown: the indented example lines become a code block."""
    import inspect

    out: list[str] = []
    in_code = False
    for line in inspect.cleandoc(text).splitlines():
        if line.strip() == "\b":
            continue
        indented = line.startswith("  ") and line.strip()
        if indented and not in_code:
            out.append("```sh")
            in_code = True
        elif not indented and in_code:
            out.append("```")
            in_code = False
        out.append(line.strip() if in_code else line)
    if in_code:
        out.append("```")
    return "\n".join(out).strip()


def cli_reference() -> str:
    """Every command with its help text and options, from the click definitions themselves."""
    import click

    from dispatch_mail.cli import main as cli

    lines = [
        "# Command reference",
        "",
        _generated_from("dispatch_mail/cli/"),
        "",
        "Exit status for every command: "
        "0 ok, 1 content or delivery errors, 2 usage errors, "
        "3 the relay refused our TLS or login (nothing more was sent), "
        "75 (send) nothing failed but some recipients are deferred, to be sent when due, "
        "130 interrupted.",
        "Colours appear only on a terminal, and never when `NO_COLOR` is set.",
        "",
        "Shell completion (bash; use `zsh_source` or `fish_source` for those shells):",
        "",
        "```sh",
        'eval "$(_DISPATCH_COMPLETE=bash_source dispatch)"',
        "```",
        "",
        "Global options: `--version`, `-h/--help`.",
        "",
        _help_markdown(cli.epilog or ""),  # the conventions every command keeps
        "",
    ]
    # contexts made as click makes them, so the group's settings (-h) reach every command
    ctx = cli.make_context("dispatch", [], resilient_parsing=True)
    for name in sorted(cli.list_commands(ctx)):
        command = cli.get_command(ctx, name)
        if command is None:
            raise LookupError(f"dispatch {name} is listed but cannot be loaded")
        sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        lines += [
            f"## dispatch {name}",
            "",
            "```",
            command.get_usage(sub).replace("Usage: ", ""),
            "```",
            "",
        ]
        lines += [_help_markdown(command.help or ""), ""]
        rows = ["| option | meaning |", "|---|---|"]
        for param in command.get_params(sub):
            if not isinstance(param, click.Option):
                continue  # arguments are in the usage line (click 8.5 gives them help records too)
            record = param.get_help_record(sub)
            if record is None:
                continue
            opts, text = record
            escaped = text.replace("|", "\\|")
            rows.append(f"| `{opts}` | {escaped} |")
        lines += rows + [""]
    return "\n".join(lines)


REFERENCES: dict[str, Callable[[], str]] = {
    "docs/manifest.md": manifest_reference,
    "docs/configuration.md": configuration_reference,
    "docs/cli.md": cli_reference,
}


def main(root: Path = Path(".")) -> None:
    for rel, make in REFERENCES.items():
        (root / rel).write_text(make(), encoding="utf-8")
        print(f"wrote {rel}", file=sys.stderr)


if __name__ == "__main__":
    main()
