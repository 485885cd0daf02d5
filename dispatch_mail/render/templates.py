"""Jinja2: the manifest model → MJML and → plaintext.

The newsletter's own template folder is searched before the built-in theme,
so any theme file can be overridden by one of the same name. Autoescape is on
for everything but ``*.txt.j2``; manifest text reaches templates only as data,
never as template source, so ``{{ }}`` typed in a manifest is printed as is.
Every template renders in the sandbox of ``sandbox.py``: an override is code
from the repository, and it runs where the sending secrets are.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from markupsafe import Markup

from dispatch_mail.errors import RenderError
from dispatch_mail.project.issue import Event
from dispatch_mail.project.markup import Inline, Markdown
from dispatch_mail.project.paths import shown_path
from dispatch_mail.render.calendar import calendar_path
from dispatch_mail.render.eventtime import event_when
from dispatch_mail.render.markup import (
    References,
    display_width,
    inline_html,
    inline_text,
    markdown_html,
    markdown_text,
    wrap,
)
from dispatch_mail.render.sandbox import SANDBOX_REVISION, TemplateSandbox, render_bounded
from dispatch_mail.render.strings import (
    Strings,
    arrow,
    format_issue_date,
    quote_slant,
    text_direction,
)

THEME_DIR = Path(__file__).resolve().parent / "theme"


class ConfinedLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader whose templates must really lie inside its folders.

    Jinja already refuses '..' in names; this also refuses a symlink (committed
    by anyone with access to the repository) that points outside the folder.
    """

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        real = os.path.realpath(filename)
        roots = [os.path.realpath(p) for p in self.searchpath]
        if not any(real == root or real.startswith(root + os.sep) for root in roots):
            raise jinja2.TemplateNotFound(f"{template} (it leads outside the template folders)")
        return source, filename, uptodate


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(".txt.j2")


class _QuietBytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between processes; a cache that cannot be written is no error."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError):
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja2 recompiles every template in every process (~55 ms a build); the cache saves that.

    Entries are keyed by template path and checked against the source, so an edited
    template is recompiled. DISPATCH_CACHE_DIR=off disables it.
    """
    from dispatch_mail.version import __version__

    base = os.environ.get("DISPATCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "dispatch",
    )
    if base == "off":
        return None
    # the sandbox compiles its checks into the code, and Jinja compiles each filter's calling
    # convention (pass_context or not) into it: code compiled for another sandbox, or for
    # other filters (this module's source), must not be reused
    filters = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    folder = os.path.join(
        base,
        f"jinja-{__version__}-{jinja2.__version__}-sandbox{SANDBOX_REVISION}-{filters}",
    )
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return _QuietBytecodeCache(folder)


@lru_cache(maxsize=8)
def environment(override_dir: str | None) -> jinja2.Environment:
    """One environment per template search path; compiled templates are cached in it."""
    # the override folder is searched even before it exists: a preview picks it up when created
    search = [override_dir] if override_dir else []
    env = TemplateSandbox(
        loader=ConfinedLoader([*search, str(THEME_DIR)]),
        autoescape=_autoescape,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters.update(
        inline=_inline_filter,
        markdown=_markdown_filter,
        track=_track_filter,
        nl2br=_nl2br,
        month_year=_month_year,
        wrap=wrap,
        width=display_width,
        text=_text_filter,
        md_text=_md_text_filter,
        event_when=_event_when,
        calendar_url=_calendar_url,
        long_date=_long_date,
    )
    env.globals["references"] = _references_global
    env.globals["lang_open"] = _lang_open
    env.globals["lang_close"] = _lang_close
    env.globals["words"] = _words
    env.globals["arrow_for"] = _arrow_for
    env.globals["slant_for"] = _slant_for
    return env


def reset_templates() -> None:
    """Forget compiled templates: a new override file must win over the theme's cached one."""
    environment.cache_clear()


def render(template: str, context: Mapping[str, object], override_dir: Path | None) -> str:
    """Render one template, turning any template failure into a RenderError that says where."""
    env = environment(str(override_dir) if override_dir else None)
    try:
        return render_bounded(env.get_template(template), dict(context))
    except SecurityError as exc:
        raise RenderError(f"{_template_position(exc, template)}: {exc}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template not found: {exc.name}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{_template_position(exc)}: {exc.message}") from None
    except Exception as exc:  # a theme override can fail in any way; say where, not how deep
        raise RenderError(f"{_template_position(exc)}: {type(exc).__name__}: {exc}") from None


def _template_position(exc: BaseException, template: str = "template") -> str:
    """The innermost template file and line of a failure (Jinja rewrites frames to point there)."""
    tb = exc.__traceback__
    where = template
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{shown_path(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


# ------------------------------------------------------------------ HTML filters
def _own_language(ctx: Context, part: object, parent: object = None) -> tuple[str, str] | None:
    """(lang, dir) of an item (or its section) whose language is not the issue's, else None."""
    lang = getattr(part, "lang", None) or getattr(parent, "lang", None)
    direction = getattr(part, "dir", None) or getattr(parent, "dir", None)
    if lang is None and direction is None:
        return None
    lang = lang or ctx.get("lang") or "en"
    direction = direction or text_direction(lang)
    if lang == ctx.get("lang") and direction == ctx.get("dir"):
        return None
    return lang, direction


@jinja2.pass_context
def _lang_open(ctx: Context, part: object, parent: object = None) -> Markup:
    """A ``<div lang dir>`` around a part in another language, aligned to its own start."""
    own = _own_language(ctx, part, parent)
    if own is None:
        return Markup("")
    lang, direction = own
    align = "right" if direction == "rtl" else "left"
    return Markup('<div lang="{}" dir="{}" style="text-align:{}">').format(lang, direction, align)


@jinja2.pass_context
def _words(ctx: Context, part: object = None, parent: object = None) -> Strings:
    """The theme's words for a part: in its own language when it has one, else the issue's."""
    own = _own_language(ctx, part, parent)
    if own is None:
        words: Strings = ctx["t"]
        return words
    return Strings(own[0], ctx["project"].strings)


@jinja2.pass_context
def _arrow_for(ctx: Context, part: object = None, parent: object = None) -> str:
    """The arrow after a link's words, pointing the way the part reads."""
    own = _own_language(ctx, part, parent)
    return arrow(own[1]) if own is not None else str(ctx["arrow"])


@jinja2.pass_context
def _slant_for(ctx: Context, part: object = None, parent: object = None) -> str:
    """A quotation's font-style in the part's language (upright in Arabic or Japanese)."""
    own = _own_language(ctx, part, parent)
    return quote_slant(own[0]) if own is not None else str(ctx["slant"])


@jinja2.pass_context
def _lang_close(ctx: Context, part: object, parent: object = None) -> Markup:
    return Markup("</div>") if _own_language(ctx, part, parent) else Markup("")


@jinja2.pass_context
def _inline_filter(ctx: Context, value: Inline, on_accent: bool = False) -> Markup:
    style = f"color:{ctx['project'].brand.colors.on_accent};" if on_accent else ""
    return Markup(inline_html(value, ctx["linker"], style, ctx.get("dir")))


@jinja2.pass_context
def _markdown_filter(ctx: Context, value: Markdown, heading_level: int = 3) -> Markup:
    return Markup(
        markdown_html(value, ctx["linker"], heading_level=heading_level, direction=ctx.get("dir"))
    )


@jinja2.pass_context
def _track_filter(ctx: Context, url: str) -> str:
    return str(ctx["linker"](url))


def _nl2br(value: str) -> Markup:
    return Markup("<br>").join(Markup.escape(line) for line in str(value).split("\n"))


def _month_year(day: date) -> str:
    return day.strftime("%B %Y")


# ------------------------------------------------------------------ plaintext filters
def _references(ctx: Context) -> References:
    refs = ctx["refs"]  # one collector per plaintext render, put there by plaintext.py
    if not isinstance(refs, References):
        raise TypeError("the plaintext templates need 'refs', a References collector")
    return refs


@jinja2.pass_context
def _text_filter(ctx: Context, value: Inline) -> str:
    return inline_text(value, _references(ctx), ctx.get("dir"))


@jinja2.pass_context
def _md_text_filter(ctx: Context, value: Markdown) -> str:
    return markdown_text(value, _references(ctx))


@jinja2.pass_context
def _references_global(ctx: Context) -> str:
    """The inline-link references gathered since the last call, as ``[n] url`` lines."""
    return "\n".join(f"[{n}] {url}" for n, url in _references(ctx).take())


# ------------------------------------------------------------------ events
@jinja2.pass_context
def _calendar_url(ctx: Context, event: Event) -> str | None:
    """The event's .ics in the web archive; None when the issue has no web URL to put it at."""
    web_url = ctx["web_url"]
    return f"{web_url}{calendar_path(ctx['issue'], event)}" if web_url else None


def _part_lang(ctx: Context, part: object, parent: object) -> str:
    own = _own_language(ctx, part, parent)
    return own[0] if own is not None else str(ctx.get("lang") or "en")


@jinja2.pass_context
def _event_when(ctx: Context, event: Event, parent: object = None) -> str:
    """When the event is, in its own language (a Japanese event in an Arabic issue: Japanese)."""
    return event_when(event, _part_lang(ctx, event, parent))


@jinja2.pass_context
def _long_date(ctx: Context, day: date, part: object = None, parent: object = None) -> str:
    """A story's date in its language, e.g. '12 May 2026' → 'May 12, 2026' in English: the
    issue's, or the story's own (an Arabic date inside a Japanese story reorders its digits)."""
    return format_issue_date(day, _part_lang(ctx, part, parent), "day")
