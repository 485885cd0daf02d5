"""Right-to-left issues and parts in another language: direction, mirroring, isolation, checks."""

from __future__ import annotations

import re

from dispatch_mail.publish.build import build_issue
from dispatch_mail.quality.checks import check_issue
from tests.helpers.html import Page
from tests.helpers.project import PROJECT_YAML

ARABIC_ISSUE = """\
subject: نشرة الثقافة
name: العدد ١
date: 2026-05-01
greeting: "مرحبًا {name}،"
masthead:
  headline: مرحبًا بالقراء
sections:
  - kind: announcements
    heading: أخبار
    items:
      - "تبدأ الدورة في ٣ مايو. ／ 5月3日開講"
      - "حوار مع Kenji Ōtani و Chloé Girard عن **الترجمة**."
  - kind: reading_list
    heading: قراءات
    items:
      - title: 翻訳の未来
        url: https://example.org/ja
        note: 日本語の記事です。
        lang: ja
        via: example.org
      - title: مستقبل الترجمة
        url: https://example.org/ar
        note: مقال عن الترجمة الأدبية.
  - kind: stories
    items:
      - title: قصة العدد
        url: https://example.org/story
        summary: ملخص القصة.
        quote:
          text: الترجمة جسر بين الثقافات
          by: سارة
"""


def _arabic(write_project):
    config = PROJECT_YAML + "lang: ar\n"
    return write_project(ARABIC_ISSUE, config)


def test_an_arabic_issue_is_right_to_left_throughout(write_project):
    html = build_issue(_arabic(write_project), write=False).rendered.html
    assert re.search(r'<html[^>]* lang="ar"[^>]* dir="rtl"', html)
    # MJML's columns set an explicit direction: every one must be rtl, or text inherits ltr
    assert "direction:ltr" not in html.replace(" ", "") and "direction:rtl" in html.replace(" ", "")
    # the text blocks start on the right (MJML writes each mj-text's align on its div)
    text_blocks = re.findall(r'<div style="([^"]*font-size:16px[^"]*)"', html)
    assert text_blocks and all("text-align:right" in s.replace(" ", "") for s in text_blocks)


def test_the_theme_speaks_arabic_and_mirrors_its_glyphs(write_project):
    result = build_issue(_arabic(write_project), write=False)
    page = Page(result.rendered.html)
    assert "إلغاء الاشتراك" in page.text  # the footer's unsubscribe link
    assert "出典: example.org" in page.text  # "Via", in the Japanese item's own language
    assert "اقرأ المقال كاملًا ←" in page.text  # the arrow points the way Arabic reads
    assert "«الترجمة جسر بين الثقافات»" in page.text  # Arabic quotation marks
    assert "border-right:4px" in result.rendered.html.replace(" ", "")  # the quote's rule
    assert "أيار" in page.text or "مايو" in page.text  # the date line in Arabic (CLDR)


def test_a_part_in_another_language_gets_its_own_lang_and_dir(write_project):
    html = build_issue(_arabic(write_project), write=False).rendered.html
    assert "翻訳の未来&nbsp;→</a>" in html  # the Japanese item's arrow points its own way
    assert '<div lang="ja" dir="ltr" style="text-align:left">' in html
    assert html.count('<div lang="ja"') == 1  # only the Japanese item: the Arabic one needs none


def test_mixed_direction_runs_are_isolated_so_digits_stay_with_their_script(write_project):
    html = build_issue(_arabic(write_project), write=False).rendered.html
    assert '<span dir="ltr">5月3日開講</span>' in html
    assert '<span dir="ltr">Kenji Ōtani</span>' in html
    assert '<span dir="ltr">Chloé Girard</span>' in html


def test_the_plaintext_isolates_the_runs_and_keeps_every_word(write_project):
    text = build_issue(_arabic(write_project), write=False).rendered.text
    assert "\u20685月3日開講\u2069" in text
    assert "إلغاء الاشتراك" in text


def test_check_passes_a_right_to_left_issue_in_its_own_language(write_project):
    report = check_issue(_arabic(write_project))
    errors = [f for f in report.findings if f.level == "error"]
    assert errors == []  # the unsubscribe link is found in Arabic too
    assert not [f for f in report.findings if f.code == "text.rtl-without-dir"]


def test_check_flags_arabic_text_in_a_left_to_right_issue(write_project):
    folder = write_project(ARABIC_ISSUE, PROJECT_YAML)  # no lang: English, left to right
    report = check_issue(folder)
    flagged = {f.where for f in report.findings if f.code == "text.rtl-without-dir"}
    assert "sections[0].items[0].text" in flagged and "sections[1].items[1].title" in flagged
    assert "sections[1].items[0].title" not in flagged  # Japanese: left to right is right


def test_setting_lang_on_the_part_answers_the_check(write_project):
    issue = ARABIC_ISSUE.replace(
        "  - kind: announcements\n    heading: أخبار\n",
        "  - kind: announcements\n    heading: أخبار\n    lang: ar\n",
    )
    report = check_issue(write_project(issue, PROJECT_YAML))
    flagged = {f.where for f in report.findings if f.code == "text.rtl-without-dir"}
    assert not any(where.startswith("sections[0]") for where in flagged)
    assert "sections[1].items[1].title" in flagged


def test_an_english_issue_is_unchanged(write_project):
    html = build_issue(write_project(), write=False).rendered.html
    assert re.search(r'<html[^>]* lang="en"[^>]* dir="ltr"', html)
    assert "<span dir=" not in html and '<div lang="' not in html


STORY_IN_JAPANESE = """\
subject: نشرة الثقافة
name: العدد ٢
date: 2027-04-18
masthead:
  headline: مرحبًا بالقراء
sections:
  - kind: stories
    items:
      - title: 書の心
        url: https://example.org/sho
        summary: アンマンで見つけた書の心。
        lang: ja
        byline: 文・大谷健二
        date: 2027-04-18
      - title: قصة العدد
        url: https://example.org/story
        summary: ملخص القصة.
        byline: سارة
        date: 2027-04-18
"""


def test_a_date_in_a_part_in_another_language_is_written_in_that_language(write_project):
    """A Japanese story's date in an Arabic issue was '18 أبريل 2027', Arabic inside a
    left-to-right part, which the browser showed reordered as '18 2027 أبريل'."""
    result = build_issue(write_project(STORY_IN_JAPANESE, PROJECT_YAML + "lang: ar\n"), write=False)
    html, text = result.rendered.html, result.rendered.text
    japanese = re.findall(r'<div lang="ja"[^>]*>(.*?)</div>', html, re.S)
    assert any("文・大谷健二 · 2027年4月18日" in part for part in japanese), japanese
    assert not any(re.search("[\u0600-\u06ff]", part) for part in japanese)
    assert "文・大谷健二 · 2027年4月18日" in text
    assert "سارة · 18 أبريل 2027" in text or "سارة · ١٨ أبريل ٢٠٢٧" in text  # the issue's own


def test_quotes_stand_upright_in_arabic_and_japanese_and_lean_in_english(write_project):
    """Italics are a Latin convention: slanted Arabic or Japanese type is a distortion."""

    def quote_styles(html: str) -> list[str]:
        return [s.replace(" ", "") for s in re.findall(r'<blockquote[^>]* style="([^"]*)"', html)]

    arabic = build_issue(_arabic(write_project), write=False).rendered.html
    assert quote_styles(arabic) and all("font-style:normal" in s for s in quote_styles(arabic))
    english = ARABIC_ISSUE.replace("الترجمة جسر بين الثقافات", "Translation is a bridge")
    html = build_issue(write_project(english, PROJECT_YAML), write=False).rendered.html
    assert quote_styles(html) and all("font-style:italic" in s for s in quote_styles(html))
