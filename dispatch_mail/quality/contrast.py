"""WCAG 2.x colour contrast: the maths behind the a11y.contrast check of the brand colours."""

from __future__ import annotations


def relative_luminance(hex_colour: str) -> float:
    """WCAG's relative luminance of a ``#rgb`` or ``#rrggbb`` colour: 0 for black, 1 for white."""
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast_ratio(fg: str, bg: str) -> float:
    """WCAG 2.x contrast ratio of two hex colours, from 1 (none) to 21 (black on white)."""
    a, b = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)
