"""How the CI workflow that `dispatch init` writes installs dispatch: the running copy's source.

pip records where an installed distribution came from in its ``direct_url.json``
(PEP 610): a VCS URL and commit, an archive's URL, or a local folder. None at all
means an index. Only what CI can reach again is worth writing; a local path
becomes a marked line for the owner to fill in, never a line that fails later.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata

DISTRIBUTION = "dispatch-mail"
FILL_IN = 'FILL IN: how CI installs dispatch, e.g. pip install "dispatch-mail @ git+https://…"'


@dataclass(frozen=True)
class InstallSpec:
    """A pip requirement for CI, or None with the reason it could not be told."""

    requirement: str | None
    source: str  # where the running copy came from, in words

    @property
    def known(self) -> bool:
        return self.requirement is not None


def given(requirement: str) -> InstallSpec:
    return InstallSpec(requirement, "given with --install-spec")


def running_install_spec() -> InstallSpec:
    """The requirement that installs the version running now, where pip's records tell."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return InstallSpec(None, "dispatch is not installed (it runs from a source folder)")
    direct_url = dist.read_text("direct_url.json")
    if direct_url is None and dist.read_text("INSTALLER") is None:
        # metadata no installer wrote (a source tree's .egg-info on sys.path): not from an index
        folder = os.path.abspath(str(dist.locate_file("")))
        return InstallSpec(None, f"a source folder, {folder}")
    return spec_from_direct_url(direct_url, dist.version)


def spec_from_direct_url(direct_url: str | None, version: str) -> InstallSpec:
    """A requirement from the text of a ``direct_url.json`` (None: installed from an index)."""
    if direct_url is None:
        return InstallSpec(f"{DISTRIBUTION}=={version}", "a package index")
    try:
        record = json.loads(direct_url)
        url = str(record["url"])
    except (ValueError, KeyError, TypeError):
        return InstallSpec(None, "an unreadable direct_url.json")
    local = url.startswith("file:")
    vcs = record.get("vcs_info")
    if isinstance(vcs, dict):
        commit = vcs.get("commit_id")
        where = f"{vcs.get('vcs', 'git')}+{url}"
        if local or not commit:
            return InstallSpec(None, f"a local repository, {where} at {commit or '?'}")
        subdirectory = record.get("subdirectory")
        fragment = f"#subdirectory={subdirectory}" if subdirectory else ""
        return InstallSpec(f"{DISTRIBUTION} @ {where}@{commit}{fragment}", where)
    if local:
        kind = "an editable checkout" if record.get("dir_info", {}).get("editable") else "a file"
        return InstallSpec(None, f"{kind} on this machine, {url}")
    return InstallSpec(f"{DISTRIBUTION} @ {url}", url)


def workflow_install_step(spec: InstallSpec) -> str:
    """The ``run:`` of the workflow's install step, or a marked step that fails until filled in.

    The requirement goes into a YAML block scalar, shell-quoted: nothing in it can
    end the YAML value or the shell word.
    """
    import shlex

    indent = " " * 10
    if spec.requirement is not None:
        command = f'python -m pip install {shlex.quote(spec.requirement)} "playwright>=1.45"'
        return f"        run: |\n{indent}{command}\n"
    source = " ".join(spec.source.split())  # one comment line, whatever the record held
    return (
        f"        # {FILL_IN}\n"
        f"        # (`dispatch init` could not tell: it ran from {source})\n"
        "        run: |\n"
        f'{indent}echo "newsletter.yml: fill in how CI installs dispatch (the FILL IN line)" >&2\n'
        f"{indent}exit 1\n"
        f'{indent}python -m pip install "playwright>=1.45"\n'
    )
