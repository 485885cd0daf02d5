"""The theme's words in the issue's language: message catalogs, the owner's overrides, CLDR dates.

Every word the theme itself writes ("View this issue in your browser", "Via …",
the stats line) is a message of ``catalogs/<lang>.po``, compiled to ``.mo`` and
read with the standard library's gettext (plural forms included: Arabic has six).
A newsletter overrides any message in ``dispatch.yaml`` (``strings:``), e.g.
``stories: "{count} owned stories"``. Dates come from CLDR through Babel, in the
format the newsletter chooses; an English month line needs no Babel at all.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel.core import Locale

CATALOG_DIR = Path(__file__).resolve().parent / "catalogs"
DEFAULT_LANG = "en"
# the primary language subtags CLDR writes right to left
RTL_LANGUAGES = frozenset(
    {"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "ps", "sd", "syr", "ug", "ur", "yi", "nqo"}
)
PLURAL_MESSAGES = frozenset({"stories"})
DATE_FORMATS = ("month", "day", "weekday")  # or a CLDR pattern such as "d MMMM y"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def primary_subtag(lang: str) -> str:
    return lang.replace("_", "-").split("-", 1)[0].lower()


def text_direction(lang: str) -> str:
    """'rtl' for Arabic, Hebrew, Persian, Urdu…; else 'ltr'."""
    return "rtl" if primary_subtag(lang) in RTL_LANGUAGES else "ltr"


# scripts with no italic of their own: slanting Arabic, Hebrew, CJK or Indic type is a
# distortion, not emphasis (the theme's quotes stand upright in these languages)
_UPRIGHT = frozenset(
    "ar fa ur ps ckb sd ug he yi dv ja zh ko th lo km my bo hi mr ne bn as pa gu or ta te kn "
    "ml si am ti".split()
)


def quote_slant(lang: str) -> str:
    """A quotation's CSS font-style in ``lang``: italic, or normal where the script has none."""
    return "normal" if primary_subtag(lang) in _UPRIGHT else "italic"


def arrow(direction: str) -> str:
    """The arrow after a link's text: it points the way the text reads."""
    return "←" if direction == "rtl" else "→"


@lru_cache(maxsize=32)
def _catalog(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang`` (``pt-BR`` → pt_BR, then pt), falling back to English."""
    english = gettext.GNUTranslations((CATALOG_DIR / f"{DEFAULT_LANG}.mo").open("rb"))
    for name in dict.fromkeys((lang.replace("-", "_"), primary_subtag(lang))):
        path = CATALOG_DIR / f"{name}.mo"
        if name != DEFAULT_LANG and path.is_file():
            with path.open("rb") as source:
                found = gettext.GNUTranslations(source)
            found.add_fallback(english)
            return found
    return english


def known_messages() -> list[str]:
    """Every message id, in the English catalog's order (docs, and the check of overrides)."""
    po = (CATALOG_DIR / f"{DEFAULT_LANG}.po").read_text(encoding="utf-8")
    return [m for m in re.findall(r'^msgid "(.+)"$', po, re.M)]


def available_languages() -> list[str]:
    return sorted(p.stem for p in CATALOG_DIR.glob("*.mo"))


class Strings:
    """The words of one render: ``strings("via", source="LWN")`` → "Via LWN", or its translation."""

    def __init__(self, lang: str, overrides: Mapping[str, str] | None = None):
        self.lang = lang
        self.overrides = dict(overrides or {})
        self._translations = _catalog(lang)

    def __call__(self, key: str, count: int | None = None, **values: object) -> str:
        text = self.overrides.get(f"{key}.one") if count == 1 else None
        if text is None:
            text = self.overrides.get(key)
        if text is None:
            if key in PLURAL_MESSAGES:
                text = self._translations.ngettext(key, f"{key}.plural", count or 0)
            else:
                text = self._translations.gettext(key)
        if count is not None:
            values["count"] = count
        # not str.format: an owner's override may hold other braces, which stay as written
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


def format_issue_date(day: date, lang: str, date_format: str = "month") -> str:
    """The masthead's date: 'April 2026' (month), 'April 1, 2026' (day), in the issue's language."""
    if date_format == "month" and primary_subtag(lang) == DEFAULT_LANG:
        return day.strftime("%B %Y")  # what CLDR says for English, without importing Babel
    from babel.dates import format_date, format_skeleton

    locale = babel_locale(lang)
    if date_format == "month":
        return str(format_skeleton("yMMMM", day, locale=locale))
    if date_format == "day":
        return str(format_date(day, "long", locale=locale))
    if date_format == "weekday":
        return str(format_date(day, "full", locale=locale))
    return str(format_date(day, date_format, locale=locale))


def babel_locale(lang: str) -> Locale:
    """Babel's locale for a BCP 47 tag: the region's, else the language's, else English."""
    from babel.core import Locale, UnknownLocaleError

    try:
        return Locale.parse(lang.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        base = primary_subtag(lang)
        return Locale.parse(base) if _known(base) else Locale("en")


def _known(lang: str) -> bool:
    from babel.localedata import exists

    return bool(exists(lang))
