"""Fonts in the screenshots: Noto draws CJK, Arabic and emoji, and a box drawn for want of a font
is reported, never silent.

Real Chromium, real fontconfig. Without Chromium, or without Debian's Noto fonts
(fonts-noto-cjk, fonts-noto-core, fonts-noto-color-emoji), the tests that need
them skip and say why, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dispatch_mail.browser.chromium import ChromiumSession, browser_unavailable_reason
from dispatch_mail.browser.fonts import FONT_PACKAGES
from dispatch_mail.browser.screenshot import SHOTS, format_layout, layout_report, take_screenshots
from dispatch_mail.cli import main
from dispatch_mail.errors import BrowserUnavailable
from tests.helpers.project import ISSUE_YAML, create_project

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
# A font file of each Debian package, as fontconfig names its family.
NOTO_FAMILIES = {
    "fonts-noto-cjk": "Noto Sans CJK JP",
    "fonts-noto-core": "Noto Sans Arabic",
    "fonts-noto-color-emoji": "Noto Color Emoji",
}
LIBERATION = Path("/usr/share/fonts/truetype/liberation")
PRIVATE_USE = "\ue000"
WORLD_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head>
<body style="font-family: Helvetica, Arial, sans-serif">
<p id="ar" lang="ar" dir="rtl">مرحبا بالعالم، تبدأ في ٣ مايو</p>
<p id="ja" lang="ja">日本語のテキスト、5月3日開講</p>
<p id="emoji">Launch day 🎉🚀 👍🏽</p>
<p>Kenji Ōtani و Chloé Girard — “quotes” → next</p>
</body></html>"""


def missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true, so the font tests must run, not skip: {reason}")
    pytest.skip(reason)


def fc_list(*args: str) -> str:
    if not shutil.which("fc-list"):
        missing("no fc-list (Debian: fontconfig)")
    return subprocess.run(["fc-list", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def chromium():
    reason = browser_unavailable_reason()
    if reason:
        missing(f"no browser for screenshots: {reason}")
    session = ChromiumSession()
    try:
        session.__enter__()
    except BrowserUnavailable as exc:
        missing(str(exc))
    yield session
    session.__exit__(None, None, None)


@pytest.fixture(scope="module")
def noto_fonts() -> None:
    absent = [pkg for pkg, family in NOTO_FAMILIES.items() if not fc_list(f":family={family}")]
    if absent:
        missing(f"fc-list lacks the Noto fonts; install {' '.join(absent)}")


# --------------------------------------------------------------------------- Noto installed
def test_noto_draws_arabic_japanese_and_emoji_without_a_box(chromium, noto_fonts, tmp_path):
    shots = take_screenshots(WORLD_PAGE, tmp_path, browser=chromium)
    assert set(shots) == set(SHOTS) and all(path.is_file() for path in shots.values())
    assert shots.missing_glyphs == {name: [] for name in SHOTS}
    assert shots.font_warnings() == []
    report = layout_report(WORLD_PAGE, browser=chromium)
    assert report["fonts"] == {"missing": []}
    assert "every character had a font" in format_layout(report)[-1]


def test_chromium_uses_the_noto_fonts(chromium, noto_fonts):
    """What Chromium itself says it drew each paragraph with (DevTools' platform fonts)."""
    with chromium.page(WORLD_PAGE) as view:
        view.devtools("DOM.enable")
        view.devtools("CSS.enable")
        document = view.devtools("DOM.getDocument", {"depth": -1})["root"]["nodeId"]

        def families(selector: str) -> set[str]:
            node = view.devtools("DOM.querySelector", {"nodeId": document, "selector": selector})
            fonts = view.devtools("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
            return {font["familyName"] for font in fonts["fonts"]}

        assert any(f.startswith("Noto Sans CJK") for f in families("#ja")), families("#ja")
        assert "Noto Color Emoji" in families("#emoji"), families("#emoji")
        # Arabic has a real font; DejaVu Sans, when installed, is ahead of Noto in fontconfig.
        arabic = families("#ar") - {"Liberation Sans", "Arimo"}
        assert arabic & {"Noto Sans Arabic", "Noto Naskh Arabic", "DejaVu Sans"}, arabic


# --------------------------------------------------------------------------- no font at all
def private_use_page() -> str:
    if fc_list(f":charset={ord(PRIVATE_USE):x}"):
        pytest.skip(f"an installed font has U+{ord(PRIVATE_USE):04X}: no character to test with")
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>Title {PRIVATE_USE}</title></head><body>"
        f"<p>Logo {PRIVATE_USE}{PRIVATE_USE} and 日本 😀</p>"
        f'<div style="display:none">{PRIVATE_USE} hidden, so never drawn</div>'
        "<p>Spacers that draw nothing: \u200c\u00a0\u034f\u00ad\ufeff</p></body></html>"
    )


def test_a_character_no_font_has_is_named_in_a_warning(chromium, tmp_path):
    page = private_use_page()
    shots = take_screenshots(page, tmp_path, browser=chromium)
    for name in SHOTS:
        (glyphs,) = shots.missing_glyphs[name]
        # Only the two laid-out boxes count: not the <title>, not the display:none copy.
        assert (glyphs.script, glyphs.package, glyphs.count) == ("private use", None, 2)
        assert glyphs.chars == PRIVATE_USE
    (warning,) = shots.font_warnings()
    assert warning.startswith("screenshot desktop, mobile, dark: 2 characters (private use: ")
    assert "U+E000" in warning and "were drawn with no font (boxes)" in warning

    report = layout_report(page, browser=chromium)
    assert [m["code_points"] for m in report["fonts"]["missing"]] == [["U+E000"]]
    assert not report["ok"]
    assert any("U+E000" in line for line in format_layout(report))


def test_the_screenshot_command_warns_and_succeeds(chromium, tmp_path):
    private_use_page()  # skips when some font has the character
    issue = ISSUE_YAML.replace("Something happened.", f"Our logo {PRIVATE_USE} happened.")
    project = create_project(tmp_path / "news", issues={"test": issue})
    result = CliRunner().invoke(
        main, ["screenshot", str(project / "issues/test"), "--out", str(tmp_path / "shots")]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == [
        "dark.png",
        "desktop.png",
        "mobile.png",
    ]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "screenshot desktop, mobile, dark: 1 character (private use:" in warnings[0]
    assert "U+E000" in warnings[0]


# --------------------------------------------------------------------------- a machine without Noto
SHOOT = """
import json, sys
from pathlib import Path
from dispatch_mail.browser.screenshot import take_screenshots
shots = take_screenshots(Path(sys.argv[1]).read_text("utf-8"), Path(sys.argv[2]))
print(json.dumps({name: [g.as_json() for g in m] for name, m in shots.missing_glyphs.items()}))
print(json.dumps(shots.font_warnings()))
"""


def test_without_noto_each_script_is_named_with_its_package(chromium, tmp_path):
    """A fontconfig that knows only Liberation: what a bare CI image drew before this fix.

    Run in a child process, so that its fontconfig, and the Chromium it starts, see only that.
    """
    if not LIBERATION.is_dir():
        missing(f"no {LIBERATION} (Debian: fonts-liberation)")
    config = tmp_path / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>'
        f"<dir>{LIBERATION}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>\n",
        encoding="utf-8",
    )
    (tmp_path / "page.html").write_text(WORLD_PAGE, encoding="utf-8")
    env = {**os.environ, "FONTCONFIG_FILE": str(config), "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SHOOT, str(tmp_path / "page.html"), str(tmp_path / "shots")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    per_shot, warnings = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    found = {(g["script"], g["package"]) for g in per_shot["desktop"]}
    assert found == {
        ("Arabic", "fonts-noto-core"),
        ("CJK", "fonts-noto-cjk"),
        ("emoji", "fonts-noto-color-emoji"),
    }
    arabic = next(g for g in per_shot["desktop"] if g["script"] == "Arabic")
    assert arabic["chars"].startswith("مرحبا")
    assert all(per_shot[name] == per_shot["desktop"] for name in SHOTS)
    assert len(warnings) == 3, warnings
    assert all(w.startswith("screenshot desktop, mobile, dark: ") for w in warnings)
    assert any('(Arabic: "مرحبا"…' in w and w.endswith("install fonts-noto-core") for w in warnings)
    assert any(w.endswith("install fonts-noto-cjk") for w in warnings)
    assert any(w.endswith("install fonts-noto-color-emoji") for w in warnings)


# --------------------------------------------------------------------------- the CI workflow
def test_the_workflow_init_writes_installs_the_noto_fonts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "news"])
    assert result.exit_code == 0, result.output
    workflow = yaml.safe_load((tmp_path / "news/.github/workflows/newsletter.yml").read_text())
    steps = workflow["jobs"]["previews"]["steps"]
    (install,) = [s for s in steps if "apt-get install" in s.get("run", "")]
    words = install["run"].split()
    assert {"chromium", *FONT_PACKAGES} <= set(words)
    assert set(FONT_PACKAGES) == set(NOTO_FAMILIES)
