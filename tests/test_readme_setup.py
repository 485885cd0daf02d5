"""The README's first set-up command, run as written, with the distribution's python3.

On Debian and Ubuntu that python3 is "externally managed" (PEP 668): a bare
``pip install`` is refused, which is why the command makes a venv of its own.
The command runs verbatim in a copy of this repository with ``/usr/bin/python3``
when it carries the EXTERNALLY-MANAGED mark (else ``python3`` on PATH). Only pip
is told, through its environment, to take the dependencies from this test's
interpreter rather than the network (no index, no dependency resolution, no
build isolation, this interpreter's site-packages on PYTHONPATH), so the test
is offline and takes seconds; the venv, the editable install and the build are
the command's own. The second command is what ``.ci/run`` runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.checkout import ROOT, copy_source, dependencies_only


def first_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Set-up: two commands", 1)[1].split("```sh\n", 1)[1].split("```")[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    return commands[0]


def distribution_python() -> tuple[Path, bool]:
    """The python3 a newcomer has: Debian's when it is here, and whether it is PEP 668 marked."""
    debian = Path("/usr/bin/python3")
    if debian.exists():
        marked = subprocess.run(
            [debian, "-c", "import sys, sysconfig, pathlib; "
             "print(pathlib.Path(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED').exists())"],
            capture_output=True, text=True, check=True,
        ).stdout.strip() == "True"  # fmt: skip
        if marked:
            return debian, True
    found = shutil.which("python3")
    assert found, "no python3 on PATH"
    return Path(found), False


def test_the_readme_first_command_builds_the_issue_with_the_distributions_python(
    tmp_path: Path,
) -> None:
    command = first_command()
    assert command == (
        "python3 -m venv .venv && .venv/bin/pip install -e . && "
        ".venv/bin/dispatch build issues/2026-q1"
    ), "the README's first command changed: keep this test's reading of it in step"
    python, pep668 = distribution_python()
    probe = subprocess.run([python, "-c", "import ensurepip, venv"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"{python} has no venv/ensurepip (Debian: apt-get install python3-venv)")
    checkout = copy_source(tmp_path / "dispatch")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(python)
    ours = str(dependencies_only(tmp_path / "dependencies"))
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "home" / ".cache"),
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip's spelling for: no build isolation
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONPATH": ours,
    }
    done = subprocess.run(
        ["sh", "-c", command], cwd=checkout, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert re.search(r"^built 2026-q1: 5 sections, \d+ links", done.stdout, re.M), done.stdout
    for name in ("email.html", "email.txt", "email.mjml", "email.eml"):
        assert (checkout / "build" / "2026-q1" / name).stat().st_size > 0, name
    imported = "import dispatch_mail; print(dispatch_mail.__file__)"
    where = subprocess.run(
        [checkout / ".venv" / "bin" / "python", "-c", imported],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert str(checkout) in where, f"the venv's dispatch is the copy's: {where}"
    if pep668:  # what the command is there for: a bare pip install is refused by this python3
        bare = subprocess.run(
            [python, "-m", "pip", "install", "--dry-run", "-e", "."],
            cwd=checkout, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert bare.returncode != 0 and "externally-managed-environment" in bare.stderr, bare.stderr
