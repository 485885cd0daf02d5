"""manifest model → MJML (Jinja2) → HTML (MRML) → inlined, minified HTML; and → plaintext."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dispatch_mail.project.issue import Issue
from dispatch_mail.project.settings import Project
from dispatch_mail.render.context import template_context
from dispatch_mail.render.inline import inline_css
from dispatch_mail.render.mjml import minify, mjml_to_html
from dispatch_mail.render.plaintext import render_text
from dispatch_mail.render.templates import render


@dataclass(frozen=True)
class Rendered:
    """One rendering of an issue. With ``personal`` the merge tokens are still in it."""

    mjml: str
    html: str
    text: str
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    # merge field → its placeholder in this render (personal renders only)
    merge_tokens: dict[str, str] = field(default_factory=dict, compare=False)


def render_issue(project: Project, issue: Issue, *, personal: bool = False) -> Rendered:
    timings: dict[str, float] = {}
    override = project.root / project.templates
    context = template_context(project, issue, personal)

    t0 = time.perf_counter()
    mjml_source = render("email.mjml.j2", context, override)
    css = render("inline.css.j2", context, override)
    t1 = time.perf_counter()
    html = mjml_to_html(mjml_source)
    t2 = time.perf_counter()
    html = minify(inline_css(html, css))
    t3 = time.perf_counter()
    text = render_text(context, override)
    t4 = time.perf_counter()
    timings.update(templates=t1 - t0, mjml=t2 - t1, inline=t3 - t2, plaintext=t4 - t3)
    tokens = context["merge"] if personal else {}
    return Rendered(mjml_source, html, text, timings, tokens)
