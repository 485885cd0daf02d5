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
