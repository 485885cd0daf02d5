"""The manifest and configuration references are generated from the model and committed."""

from pathlib import Path

from dispatch_mail.reference import REFERENCES

ROOT = Path(__file__).resolve().parent.parent


def test_committed_references_match_the_model():
    for rel, make in REFERENCES.items():
        committed = (ROOT / rel).read_text(encoding="utf-8")
        assert committed == make(), f"{rel} is stale: run python -m dispatch_mail.reference"


def test_every_section_kind_and_field_is_documented():
    from dispatch_mail.project.issue import SECTION_KINDS, documented_fields

    text = (ROOT / "docs/manifest.md").read_text(encoding="utf-8")
    for kind, cls in SECTION_KINDS.items():
        assert f"`kind: {kind}`" in text
        for field in documented_fields(cls):
            assert f"`{field.name}`" in text


def test_every_command_and_option_is_documented():
    import click

    from dispatch_mail.cli import main

    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    ctx = click.Context(main, info_name="dispatch")
    for name in main.list_commands(ctx):
        assert f"dispatch {name}" in docs, name
        command = main.get_command(ctx, name)
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in docs, f"dispatch {name} {opt}"


def test_the_references_show_no_python_reprs():
    """Defaults and section texts read as YAML and words, never as ``Brand(*, logo: ...)``."""
    import re

    repr_like = re.compile(
        r"\b[A-Z][A-Za-z]+\((\*|[a-z_]+=)"  # a signature or repr: Brand(*, / Colors(primary=
        r"|'[A-Za-z]+ \| None'"  # a string annotation: 'Logo | None'
        r"|<class |<enum |PosixPath\(|\bdefault_factory\b"
        r"|: '[A-Za-z]+' = "  # a signature fragment: colors: 'Colors' = ...
    )
    for rel in ("docs/configuration.md", "docs/manifest.md"):
        for number, line in enumerate((ROOT / rel).read_text(encoding="utf-8").splitlines(), 1):
            found = repr_like.search(line)
            assert found is None, f"{rel}:{number}: a Python repr: {found.group(0)!r} in {line!r}"


def test_a_default_renders_as_yaml():
    import dataclasses

    from dispatch_mail.reference import _default

    @dataclasses.dataclass
    class Example:
        names: list[str] = dataclasses.field(default_factory=lambda: ["a", "b"])
        mapping: dict[str, int] = dataclasses.field(default_factory=lambda: {"x": 1})
        empty: list[str] = dataclasses.field(default_factory=list)
        flag: bool = False

    shown = {f.name: _default(f) for f in dataclasses.fields(Example)}
    assert shown == {"names": "`[a, b]`", "mapping": "`{x: 1}`", "empty": "`[]`", "flag": "`false`"}
