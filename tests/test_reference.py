"""The manifest and configuration references are generated from the model and committed."""

from pathlib import Path

from dispatch_mail.reference import REFERENCES

ROOT = Path(__file__).resolve().parent.parent


def test_committed_references_match_the_model():
    for rel, make in REFERENCES.items():
        committed = (ROOT / rel).read_text(encoding="utf-8")
        assert committed == make(), f"{rel} is stale: run python -m dispatch_mail.reference"


def test_every_section_kind_and_field_is_documented():
    from dispatch_mail.model import SECTION_KINDS, walk_dataclass_fields

    text = (ROOT / "docs/manifest.md").read_text(encoding="utf-8")
    for kind, cls in SECTION_KINDS.items():
        assert f"`kind: {kind}`" in text
        for field in walk_dataclass_fields(cls):
            assert f"`{field.name}`" in text
