"""The theme's words in every language: catalogs, plural forms, overrides, dates, direction."""

from __future__ import annotations

import importlib.util
import re
from datetime import date
from pathlib import Path

import pytest

from dispatch_mail.render.bidi import opposite_runs
from dispatch_mail.render.context import slugify
from dispatch_mail.render.strings import (
    CATALOG_DIR,
    Strings,
    available_languages,
    format_issue_date,
    known_messages,
    text_direction,
)

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ["en", "fr", "de", "es", "pt", "ja", "zh", "ar"]


def _compiler():
    spec = importlib.util.spec_from_file_location(
        "compile_catalogs", ROOT / "scripts" / "compile_catalogs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_required_languages_have_catalogs():
    assert set(LANGUAGES) <= set(available_languages())


@pytest.mark.parametrize("po", sorted(CATALOG_DIR.glob("*.po")), ids=lambda p: p.stem)
def test_each_committed_mo_says_what_its_po_says(po):
    import gettext
    import io

    committed = gettext.GNUTranslations(po.with_suffix(".mo").open("rb"))
    fresh = gettext.GNUTranslations(io.BytesIO(_compiler().compiled(po)))
    for key in known_messages():
        for n in (0, 1, 2, 3, 11, 100):
            assert committed.ngettext(key, key + ".plural", n) == fresh.ngettext(
                key, key + ".plural", n
            ), "run python3 scripts/compile_catalogs.py"
        assert committed.gettext(key) == fresh.gettext(key), "run scripts/compile_catalogs.py"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated_with_its_placeholders(lang):
    english, words = Strings("en"), Strings(lang)
    values = {"count": 3, "source": "X", "region": "APAC", "alt": "A chart"}
    for key in known_messages():
        source, translated = english(key, **values), words(key, **values)
        assert translated and not translated.startswith(key), (lang, key)
        # the same placeholders, filled: none is left as {name}
        assert "{" not in translated, (lang, key, translated)
        if key == "via":
            assert "X" in words(key, source="X")
        if key == "roundup":
            assert "APAC" in words(key, region="APAC")
        if lang != "en" and key not in ("via", "online", "quote_open", "quote_close"):
            assert translated != source or lang in ("de", "pt"), (lang, key)


def test_plural_forms_follow_the_language():
    en, fr, ar = Strings("en"), Strings("fr"), Strings("ar")
    assert [en("stories", count=n) for n in (1, 2)] == ["1 story", "2 stories"]
    assert fr("stories", count=0) == "0 article"  # French: 0 and 1 are singular
    words = [ar("stories", count=n).replace(str(n), "") for n in (0, 1, 2, 3, 11, 100)]
    assert len(set(words)) == 5  # six categories; "many" (11) and "other" (100) share a word


def test_an_owner_overrides_a_message_in_every_language():
    assert Strings("en", {"stories": "{count} owned stories"})("stories", count=5) == (
        "5 owned stories"
    )
    custom = Strings("fr", {"view_in_browser": "Lire en ligne {unknown}"})
    assert custom("view_in_browser") == "Lire en ligne {unknown}"  # other braces stay


def test_an_override_may_say_the_singular_apart():
    words = Strings("en", {"stories": "{count} features", "stories.one": "{count} feature"})
    assert [words("stories", count=n) for n in (1, 2)] == ["1 feature", "2 features"]


def test_a_regional_tag_falls_back_to_its_language_then_english():
    assert Strings("pt-BR")("unsubscribe") == Strings("pt")("unsubscribe")
    assert Strings("sv")("unsubscribe") == "Unsubscribe"


@pytest.mark.parametrize(
    "lang, fmt, expected",
    [
        ("en", "month", "April 2026"),
        ("en", "day", "April 1, 2026"),
        ("fr", "month", "avril 2026"),
        ("de", "day", "1. April 2026"),
        ("ja", "month", "2026年4月"),
        ("ar", "month", "أبريل 2026"),
        ("en", "d MMM y", "1 Apr 2026"),
    ],
)
def test_dates_come_from_cldr_in_the_chosen_format(lang, fmt, expected):
    assert format_issue_date(date(2026, 4, 1), lang, fmt) == expected


def test_the_english_month_needs_no_babel_and_matches_cldr():
    from babel.dates import format_skeleton

    day = date(2026, 11, 1)
    assert format_issue_date(day, "en") == format_skeleton("yMMMM", day, locale="en")


@pytest.mark.parametrize("lang", ["ar", "he", "fa", "ur", "ar-EG"])
def test_right_to_left_languages(lang):
    assert text_direction(lang) == "rtl"


@pytest.mark.parametrize("lang", ["en", "ja", "zh-Hant", "fr"])
def test_left_to_right_languages(lang):
    assert text_direction(lang) == "ltr"


# ------------------------------------------------------------------ anchors and List-Id
def test_latin_headings_fold_as_before():
    assert slugify("APAC Roundup") == "apac-roundup"
    assert slugify("Café & Crème") == "cafe-creme"


def test_non_latin_headings_keep_distinct_ascii_names():
    names = {slugify(h) for h in ("今週のニュース", "イベント", "أخبار", "ثقافة")}
    assert len(names) == 4
    assert all(re.fullmatch(r"xn--[a-z0-9-]+", n) for n in names)


# ------------------------------------------------------------------ bidi isolation
def test_a_latin_or_cjk_run_in_arabic_is_isolated_with_its_digits():
    text = "تبدأ في ٣ مايو. ／ 5月3日開講"
    runs = [text[a:b] for a, b in opposite_runs(text, "rtl")]
    assert runs == ["5月3日開講"]


def test_latin_names_in_arabic_are_each_isolated():
    text = "حوار مع Kenji Ōtani و Chloé Girard عن الترجمة"
    assert [text[a:b] for a, b in opposite_runs(text, "rtl")] == ["Kenji Ōtani", "Chloé Girard"]


def test_english_text_has_nothing_to_isolate():
    assert opposite_runs("DPDK 25.03 is out (see the notes).", "ltr") == []
    text = "An interview with سارة about translation"
    assert [text[a:b] for a, b in opposite_runs(text, "ltr")] == ["سارة"]


@pytest.mark.parametrize("pattern", ["HH:mm", "SSS", "XDISPATCHMERGEX", "zzzz"])
def test_a_date_format_with_time_or_other_letters_is_refused_where_it_is_written(
    write_project, pattern
):
    from dispatch_mail.errors import ContentError
    from dispatch_mail.publish.build import build_issue
    from tests.helpers.project import PROJECT_YAML

    folder = write_project(config=PROJECT_YAML + f'date_format: "{pattern}"\n')
    with pytest.raises(ContentError) as caught:
        build_issue(folder, write=False)
    (problem,) = caught.value.problems
    assert problem.key == "date_format" and problem.line > 0


def test_a_cldr_date_pattern_with_quoted_words_is_a_date_format(write_project):
    from dispatch_mail.publish.build import build_issue
    from tests.helpers.project import PROJECT_YAML

    folder = write_project(config=PROJECT_YAML + "date_format: \"'Week' w, y\"\n")
    assert "Week 2, 2026" in build_issue(folder, write=False).rendered.text


def test_event_times_are_written_in_the_issue_s_language():
    from dispatch_mail.project.loader import load
    from dispatch_mail.render.eventtime import event_when

    example = ROOT / "examples" / "bilingual-rtl" / "issues" / "2027-05-issue-14"
    _, issue = load(example)
    events = [e for s in issue.sections if s.kind == "events" for e in s.items]
    assert events
    assert "مايو" in event_when(events[0], "ar") and "Monday" not in event_when(events[0], "ar")
    assert "mai" in event_when(events[0], "fr")
    assert "May" in event_when(events[0], "en")
