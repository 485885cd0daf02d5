"""The plaintext part: its own template, wrapped at 72 columns, links as numbered references."""

from __future__ import annotations

import re
from pathlib import Path

from dispatch_mail.render.context import TemplateContext
from dispatch_mail.render.markup import References
from dispatch_mail.render.templates import render

_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
_TRAILING = re.compile(r"[ \t]+\n")


def render_text(context: TemplateContext, override_dir: Path | None) -> str:
    """The plaintext part; a fresh link collector per render, so references start at [1]."""
    text = render("email.txt.j2", {**context, "refs": References(context["linker"])}, override_dir)
    text = _TRAILING.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip("\n") + "\n"
