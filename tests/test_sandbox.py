"""Template overrides are code from the repository: they render in a sandbox, not with Python.

Each payload below is a known way out of a Jinja2 template (or a way to exhaust the
machine from one). Planted in a real project's ``templates/``, it must fail the real
``dispatch`` command with one located line, "the template is not allowed to …", and
nothing of it may happen: no marker file appears, the SMTP password and the
unsubscribe secret in the environment appear in no output and no file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from datetime import date
from pathlib import Path

import jinja2
import pytest

from dispatch_mail.version import __version__
from tests.helpers.project import create_project
from tests.helpers.send import invoke, run

MARKER = "MARKER"  # a file in the project folder that a payload that ran would have made
IMPORT_OS = "issue.__init__.__globals__['dataclasses'].sys.modules['os']"
CATCH_WARNINGS = (
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
    "{% if c.__name__ == 'catch_warnings' %}"
    "{{ c()._module.__builtins__['__import__']('os').popen('touch MARKER').read() }}"
    "{% endif %}{% endfor %}"
)
PAYLOADS = {
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "cycler-environ": (
        "{{ cycler.__init__.__globals__.os.environ.get('DISPATCH_SMTP_PASSWORD') }}"
    ),
    "joiner-globals": "{{ joiner.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "namespace-globals": "{{ namespace.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "model-globals": "{{ " + IMPORT_OS + ".popen('touch MARKER').read() }}",
    "model-environ": "{{ " + IMPORT_OS + ".environ }}",
    "mro-subclasses": CATCH_WARNINGS,
    "mro-method": CATCH_WARNINGS.replace(".__mro__[1]", ".mro()[1]"),
    "template-reference": (
        "{{ self._TemplateReference__context.cycler.__init__.__globals__"
        ".os.popen('touch MARKER').read() }}"
    ),
    "config": "{{ config.__class__.__init__.__globals__['os'].popen('touch MARKER').read() }}",
    "request": (
        "{{ request.application.__globals__.__builtins__.__import__('os')"
        ".popen('touch MARKER').read() }}"
    ),
    "attr-filter": (
        "{{ (issue | attr('__init__') | attr('__globals__'))['dataclasses']"
        ".sys.modules['os'].environ }}"
    ),
    "map-attribute": "{{ [issue] | map(attribute='__init__') | map(attribute='__globals__') "
    "| join }}",
    "format-filter": (
        "{{ (issue | attr('%c%cinit%c%c' | format(95, 95, 95, 95)))"
        "['__globals__']['dataclasses'].sys.modules['os'].environ }}"
    ),
    "percent-operator": "{{ issue[('%c%cinit%c%c' % (95, 95, 95, 95))].__globals__ }}",
    "str-format": (
        "{{ '{0.__init__.__globals__[dataclasses].sys.modules[os].environ}'.format(issue) }}"
    ),
    "str-format-class": "{{ '{0.__class__}'.format(issue) }}",
    "str-format-map": "{{ '{x.__init__.__globals__}'.format_map({'x': issue}) }}",
    "path-read": "{{ (project.root / 'secret.txt').read_text() }}",
    "path-write": "{{ (project.root / 'MARKER').touch() }}",
    "helper-object": "{{ refs.take() }}",
    "list-clear": "{{ issue.sections.clear() or '' }}",
    "list-append": "{{ project.reviewers.append('someone@example.net') or '' }}",
    "dict-update": "{{ merge.update({'unsubscribe_url': 'https://evil.example.net/'}) or '' }}",
    "dict-pop": "{{ project.lists.pop('x', '') }}",
    "range-dos": "{% for i in range(10**9) %}{% endfor %}",
    "power-dos": "{{ 10 ** (10 ** 7) }}",
    "repeat-dos": "{{ ('x' * 10**7) | length }}",
    "doubling-dos": "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}",
}


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The secrets a payload would be after, set in the environment as in a real send."""
    values = {
        "DISPATCH_SMTP_PASSWORD": "smtp-" + secrets.token_hex(8),
        "DISPATCH_UNSUBSCRIBE_SECRET": "unsub-" + secrets.token_hex(20),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def planted(root: Path, payload: str, template: str = "footer.txt.j2") -> Path:
    """A project whose ``template`` override carries ``payload`` on its line 2."""
    create_project(root, templates={template: f"-- footer --\n{payload}\n"})
    (root / "secret.txt").write_text("file-" + secrets.token_hex(8), encoding="utf-8")
    (root / "list.csv").write_text("email,name\nann@example.com,Ann\n", encoding="utf-8")
    return root


def assert_refused(
    root: Path, stderr: str, secret_values: list[str], template: str, line: str = ":2"
) -> None:
    """One located 'not allowed' line, nothing ran, no secret anywhere."""
    errors = [text for text in stderr.splitlines() if text.startswith("error:")]
    assert len(errors) == 1, stderr
    assert re.fullmatch(
        rf"error: templates/{re.escape(template)}{line}: the template is not allowed to \S.*",
        errors[0],
    ), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert not (root / MARKER).exists(), "the payload ran"
    secret_values = [*secret_values, (root / "secret.txt").read_text(encoding="utf-8")]
    for path in root.rglob("*"):
        if path.is_file() and path.name != "secret.txt":
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secret_values), path
    assert not any(s in stderr for s in secret_values), stderr


@pytest.mark.parametrize("name", PAYLOADS)
def test_dispatch_build_refuses_the_payload(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets_in_env: dict[str, str]
) -> None:
    root = planted(tmp_path / "news", PAYLOADS[name])
    monkeypatch.chdir(root)
    result = invoke("build", "issues/test", "--out", "out")
    assert result.exit_code == 1, result.output
    assert "built" not in result.stdout
    assert not (root / "out" / "email.html").exists()
    assert_refused(root, result.stderr, list(secrets_in_env.values()), "footer.txt.j2")


def test_a_render_that_grows_without_bound_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loops over allowed values can still print a lot: the render as a whole has a ceiling."""
    payload = "{% set s = 'x' * 100000 %}{% for c in s[:200] %}{{ s }}{% endfor %}"
    root = planted(tmp_path / "news", payload)
    monkeypatch.chdir(root)
    result = invoke("build", "issues/test", "--out", "out")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        "error: email.txt.j2: the template is not allowed to produce more than 10000000 characters"
    ]
    assert not (root / "out" / "email.txt").exists()


@pytest.mark.parametrize("name", ["cycler-environ", "model-globals", "str-format", "path-read"])
def test_the_html_templates_are_sandboxed_too(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets_in_env: dict[str, str]
) -> None:
    root = planted(tmp_path / "news", PAYLOADS[name], "footer.mjml.j2")
    monkeypatch.chdir(root)
    result = invoke("build", "issues/test", "--out", "out")
    assert result.exit_code == 1, result.output
    assert_refused(root, result.stderr, list(secrets_in_env.values()), "footer.mjml.j2")


@pytest.mark.parametrize("name", ["cycler-environ", "model-globals", "str-format", "path-read"])
def test_a_dry_run_send_refuses_the_payload_and_writes_nothing(
    name: str, tmp_path: Path, secrets_in_env: dict[str, str]
) -> None:
    """A real ``dispatch send --dry-run`` process, with the secrets of a real send."""
    root = planted(tmp_path / "news", PAYLOADS[name])
    result = run(
        ["send", "issues/test", "--list", "list.csv", "--dry-run", "out.mbox"],
        cwd=root,
        **secrets_in_env,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (root / "out.mbox").exists()
    assert_refused(root, result.stderr, list(secrets_in_env.values()), "footer.txt.j2")
    assert not any(s in result.stdout for s in secrets_in_env.values())


@pytest.mark.parametrize("command", [["check", "issues/test"], ["build", "--all", "--out", "o"]])
def test_check_and_build_all_refuse_it_too(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    secrets_in_env: dict[str, str],
) -> None:
    root = planted(tmp_path / "news", PAYLOADS["lipsum-globals"])
    monkeypatch.chdir(root)
    result = invoke(*command)
    assert result.exit_code == 1, result.output
    assert not (root / MARKER).exists()
    assert "templates/footer.txt.j2:2: the template is not allowed to use 'lipsum'" in (
        result.output
    )
    assert not any(s in result.output for s in secrets_in_env.values())


ALLOWED = """\
-- {{ project.name | upper }} --
{% for line in issue.masthead.headline.split(" ") %}[{{ loop.index }}:{{ line }}]{% endfor %}
{{ issue.date.isoformat() }} {{ "=" * 3 }} {{ [3, 1, 2] | max }} {{ stats | length }}
{{ project.footer.links | map(attribute="label") | join(", ") | default("no links", true) }}
{% for key, value in {"a": 1}.items() %}{{ key }}={{ value }}{% endfor %} {{ {"b": 2}.get("b") }}
{{ issue.sections[0]["items"][0].plain | truncate(9) | trim }} {{ 10 % 3 }} {{ 2 ** 10 }}
{{ merge.unsubscribe_url }}
"""


def test_what_the_documented_templates_may_use_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = create_project(tmp_path / "news", templates={"footer.txt.j2": ALLOWED})
    monkeypatch.chdir(root)
    result = invoke("build", "issues/test", "--out", "out")
    assert result.exit_code == 0, result.output
    text = (root / "out" / "email.txt").read_text(encoding="utf-8")
    assert "-- TEST NEWS --\n[1:Hello]\n2026-01-08 === 3 0\nno links\na=1 2\n" in text, text
    assert "Someth... 1 1024\nhttps://example.org/unsubscribe?t=" in text, text


def test_the_context_reaches_no_secret_and_nothing_but_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets_in_env: dict[str, str]
) -> None:
    """Walk everything a template can open from its context, by the sandbox's own rules."""
    from dispatch_mail.project.loader import load
    from dispatch_mail.render.context import template_context
    from dispatch_mail.render.sandbox import refusal

    root = create_project(tmp_path / "news")
    project, issue = load(root / "issues" / "test")
    plain = (str, int, float, bool, type(None), date, list, tuple, dict)
    for personal in (False, True):
        context = template_context(project, issue, personal)
        seen: list[object] = []
        # the two callables: the link rewriter and the theme's words (strings in, strings out)
        todo: list[object] = [v for k, v in context.items() if k not in ("linker", "t")]
        assert isinstance(context["t"]("unsubscribe"), str)
        while todo:
            value = todo.pop()
            if any(value is s for s in seen):
                continue
            seen.append(value)
            model = dataclasses.is_dataclass(value) and not isinstance(value, type)
            assert isinstance(value, plain) or (
                model and type(value).__module__.startswith("dispatch_mail.project.")
            ), type(value)
            assert not any(s in repr(value) for s in secrets_in_env.values())
            if isinstance(value, dict):
                todo += value.values()
            elif isinstance(value, (list, tuple)):
                todo += value
            elif model:
                for f in dataclasses.fields(value):  # type: ignore[arg-type]
                    child = getattr(value, f.name)
                    if refusal(value, f.name, child) is None:
                        todo.append(child)
        assert not any(isinstance(v, Path) for v in seen)  # project.root is not reachable
        assert any(v is project.footer for v in seen)  # the walk did walk the models


def test_bytecode_compiled_without_the_sandbox_is_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiled templates are cached by their source alone: an unsandboxed compile must not win.

    The cache a previous dispatch (no sandbox) left behind holds code for this very
    template; with it, ``*`` would run unchecked.
    """
    payload = "{% set n = 10 ** 6 %}{{ ('x' * n) | length }}"
    root = planted(tmp_path / "news", payload).resolve()
    cache = tmp_path / "cache"
    previous = cache / f"jinja-{__version__}-{jinja2.__version__}"  # the folder it used
    previous.mkdir(parents=True)
    monkeypatch.setenv("DISPATCH_CACHE_DIR", str(cache))
    old = jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            [str(root / "templates"), str(Path(jinja2.__file__).parent)]  # any second folder
        ),
        bytecode_cache=jinja2.FileSystemBytecodeCache(str(previous)),
    )
    old.get_template("footer.txt.j2")
    assert os.listdir(previous)  # the unsandboxed code is there, keyed as ours would be
    monkeypatch.chdir(root)
    result = invoke("build", "issues/test", "--out", "out")
    assert result.exit_code == 1, result.output
    assert "footer.txt.j2:2: the template is not allowed to repeat" in result.stderr
