"""Placeholder URLs: the links `dispatch init` and `dispatch new` leave for the owner to replace.

A placeholder is any http(s) URL on the reserved ``.invalid`` top-level domain
(RFC 2606): it is a valid URL, so a draft still loads, builds and previews, yet it
can never reach anyone. A YAML comment would be invisible to the loader; a URL is
not, so `dispatch build` warns about each one, `dispatch check` reports it, and a
real send to a list refuses to start until every one is replaced.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dispatch_mail.errors import Problem
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.yaml_nodes import compose_file, join_key

PLACEHOLDER_BASE = "https://example.invalid/"  # what the skeleton and `dispatch new` write
MESSAGE = "placeholder left to fill"
_PLACEHOLDER = re.compile(r"https?://(?:[a-z0-9-]+\.)*invalid(?=[:/?#\s)\]>\"']|$)", re.IGNORECASE)


def placeholder(name: str) -> str:
    """A placeholder URL whose path says what belongs there, e.g. ``…/your-community-page``."""
    return PLACEHOLDER_BASE + name


def is_placeholder(text: str) -> bool:
    """Whether ``text`` holds a placeholder URL anywhere (a URL field or a Markdown link)."""
    return _PLACEHOLDER.search(text) is not None


def placeholder_problems(manifest: Path) -> list[Problem]:
    """Every value of ``manifest`` that still holds a placeholder URL, located by line and key.

    A file that does not load yields nothing here: the loader reports it.
    """
    if not manifest.is_file():  # an issue built from a model, with no file behind it
        return []
    try:  # most manifests hold none: reading the text is cheaper than composing it again
        if ".invalid" not in manifest.read_text(encoding="utf-8", errors="replace").lower():
            return []
    except OSError:
        return []
    node, _ = compose_file(manifest, shown_path(manifest))
    found: list[Problem] = []
    if node is not None:
        _walk(node, "", shown_path(manifest), found)
    return found


def _walk(node: yaml.Node, key: str, shown: str, found: list[Problem]) -> None:
    # compose_file has already refused nesting too deep to walk recursively
    if isinstance(node, yaml.MappingNode):
        for knode, vnode in node.value:
            name = knode.value if isinstance(knode, yaml.ScalarNode) else "?"
            _walk(vnode, join_key(key, str(name)), shown, found)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _walk(child, f"{key}[{i}]", shown, found)
    elif isinstance(node, yaml.ScalarNode) and is_placeholder(str(node.value)):
        mark = node.start_mark
        found.append(Problem(shown, mark.line + 1, mark.column + 1, key, MESSAGE))
