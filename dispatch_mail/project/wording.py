"""How a count is written in a message: "1 image", "2 images", one rule for every layer."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun in the number it takes; ``nouns`` for an irregular plural."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"
