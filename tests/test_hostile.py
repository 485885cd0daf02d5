"""Hostile and broken input, from the corpus in tests/corpus/: a clear error or a safe rendering,
in bounded time, with no traceback and nothing written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.cli import main
from dispatch_mail.errors import ContentError, RenderError
from dispatch_mail.project.loader import load
from dispatch_mail.render import render_issue
from tests.helpers.project import REPO_CONFIG, create_project

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"

# manifest → (line, column or None, text every run must print for it)
REJECTED = {
    "syntax_error.yaml": [(2, 5, "YAML syntax error: did not find expected ',' or ']'")],
    "wrong_types.yaml": [(6, 11, "sections: expected a list")],
    "unknown_keys.yaml": [
        (2, 1, "subjet: unknown key (did you mean 'subject'?)"),
        (10, 5, "sections[0].buton: unknown key (did you mean 'button'?)"),
    ],
    "duplicate_keys.yaml": [(2, 1, "subject: duplicate key (first set on line 1)")],
    "billion_laughs.yaml": [(None, None, "aliases")],
    "invalid_utf8.yaml": [(1, 13, "not valid UTF-8")],
    "control_characters.yaml": [
        (1, None, "subject: contains control characters"),
        (8, None, "sections[0].text: contains control characters"),
    ],
    "crlf_in_headers.yaml": [
        (1, None, "subject: must be one line: CR and LF are not allowed in a mail header"),
        (2, None, "preheader: must be one line"),
    ],
    "bad_urls.yaml": [
        (10, None, "'javascript:' links are not allowed"),
        (11, None, "'data:' links are not allowed"),
        (11, None, "'vbscript:' links are not allowed"),
        (12, None, "'ftp:' links are not allowed"),
    ],
    "absurd_values.yaml": [(12, None, "image.width: 100000 is out of range")],
    "not_a_mapping.yaml": [(1, 1, "expected a mapping")],
}


def project_with(tmp_path: Path, manifest: Path) -> Path:
    create_project(tmp_path, config=REPO_CONFIG, issues={"hostile": manifest})
    return tmp_path / "issues" / "hostile"


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_broken_manifest_gives_located_errors_and_writes_nothing(tmp_path, name):
    issue = project_with(tmp_path, CORPUS / "manifests" / name)
    result = CliRunner().invoke(main, ["build", str(issue), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    for line_no, col, text in REJECTED[name]:
        matching = [line for line in lines if text in line]
        assert matching, f"{name}: no line with {text!r} in:\n{result.output}"
        if line_no is not None:
            where = f"issue.yaml:{line_no}:{col}:" if col else f"issue.yaml:{line_no}:"
            assert any(where in line for line in matching), (
                f"{name}: {text!r} not at {where}:\n{result.output}"
            )
    assert not (tmp_path / "out").exists()


def test_hostile_project_file_reports_every_problem(tmp_path):
    shutil.copytree(CORPUS / "projects" / "crlf_sender", tmp_path / "p")
    issue = tmp_path / "p" / "issues" / "x"
    issue.mkdir(parents=True)
    shutil.copy(ROOT / "issues" / "2026-q1" / "issue.yaml", issue / "issue.yaml")
    with pytest.raises(ContentError) as caught:
        load(issue)
    text = "\n".join(str(p) for p in caught.value.problems)
    for expected in (
        "sender.name: must be one line",
        "sender.address:",
        "footer.unsubscribe_url: 'javascript:'",
        "brand.colors.primary: 'red' is not a colour",
        "smtp.default.port: 99999 is out of range",
        "smtp.default.tls: 'sometimes' is not one of",
    ):
        assert expected in text, expected
    assert all(p.path.endswith("dispatch.yaml") and p.line > 0 for p in caught.value.problems)


def test_html_and_mjml_in_text_fields_are_escaped(tmp_path):
    issue = project_with(tmp_path, CORPUS / "manifests" / "html_and_mjml_in_text.yaml")
    project, model = load(issue)
    rendered = render_issue(project, model)
    html = rendered.html
    assert "<script" not in html
    assert "<img src=x" not in html and "onerror=alert" not in html.replace(
        "onerror=alert(1)&gt;", ""
    )
    assert "&lt;script&gt;alert('s')&lt;/script&gt;" in html.replace("&#39;", "'")
    assert "&lt;mj-include" in html and "/etc/passwd" in html  # printed, not included
    assert "<mj-" not in html  # nothing of the text reached MJML as markup
    assert "Title with <mj-include" in rendered.text  # the plaintext shows it as it was typed
    assert 'onmouseover="alert' not in html


def test_jinja_in_content_is_printed_not_evaluated(tmp_path):
    issue = project_with(tmp_path, CORPUS / "manifests" / "jinja_in_content.yaml")
    project, model = load(issue)
    rendered = render_issue(project, model)
    html = rendered.html.replace("&#39;", "'").replace("&#34;", '"')
    assert "<title>{{ 7*7 }} {% if true %}yes{% endif %}</title>" in html
    for text in (html, rendered.text):
        assert "{{ project.footer.postal_address }}" in text  # the headline, as typed
        assert "{% include '/etc/passwd' %}" in text
        assert "{{ config }}" in text and "{{ lipsum() }}" in text
        assert "{% raw %}raw{% endraw %}" in text or "{% RAW %}RAW{% ENDRAW %}" in text
    assert "root:x:0:0" not in html and "49 yes" not in html


def test_deep_nesting_does_not_crash_the_process(tmp_path):
    """libyaml's composer recurses per level: 100,000 levels would overflow the C stack."""
    manifest = tmp_path / "deep.yaml"
    manifest.write_text("subject: " + "[" * 100_000 + "]" * 100_000 + "\n")
    issue = project_with(tmp_path, manifest)
    proc = subprocess.run(
        [sys.executable, "-m", "dispatch_mail.cli", "build", str(issue)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-500:])
    assert "nested" in proc.stderr or "deep" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_fifty_megabyte_manifest_is_refused_quickly(tmp_path):
    manifest = tmp_path / "big.yaml"
    with manifest.open("w") as handle:
        handle.write("subject: x\nsections:\n")
        line = "  - kind: markdown\n    body: " + "x" * 1000 + "\n"
        for _ in range(50 * 1024):
            handle.write(line)
    assert manifest.stat().st_size > 50 * 1024 * 1024
    issue = project_with(tmp_path, manifest)
    proc = subprocess.run(
        [sys.executable, "-m", "dispatch_mail.cli", "build", str(issue)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "at most 1,048,576 are read" in proc.stderr
    assert not (tmp_path / "build").exists()


def test_template_override_cannot_reach_outside_its_folder(tmp_path):
    issue = project_with(tmp_path, ROOT / "issues" / "2026-q1" / "issue.yaml")
    templates = tmp_path / "templates"
    templates.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    project, model = load(issue)
    for include in ("../secret.txt", "/etc/passwd", "../../../../../../etc/passwd"):
        (templates / "footer.mjml.j2").write_text(f'{{% include "{include}" %}}')
        from dispatch_mail.render.templates import reset_templates

        reset_templates()
        with pytest.raises(RenderError) as caught:
            render_issue(project, model)
        assert "not found" in str(caught.value)
    # a symlink committed into the templates folder that points outside it
    (templates / "footer.mjml.j2").unlink()
    os.symlink(secret, templates / "footer.mjml.j2")
    reset_templates()
    with pytest.raises(RenderError) as caught:
        render_issue(project, model)
    assert "outside the template folders" in str(caught.value)
    result = CliRunner().invoke(main, ["build", str(issue), "--out", str(tmp_path / "out")])
    assert (
        result.exit_code == 1
        and "TOP-SECRET" not in result.output
        and "Traceback" not in result.output
    )
    reset_templates()
