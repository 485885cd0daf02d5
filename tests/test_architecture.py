"""The package's shape is part of its contract: imports point down, modules stay small."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dispatch_mail"
MAX_MODULE_LINES = 430  # "about 400": one responsibility per module


def test_imports_point_down_the_pipeline() -> None:
    """The import-linter contract in pyproject.toml: a cycle or an upward import fails here."""
    lint_imports = shutil.which("lint-imports") or str(
        Path(sys.executable).with_name("lint-imports")
    )
    result = subprocess.run(
        [lint_imports, "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_module_is_a_grab_bag(module: Path) -> None:
    lines = len(module.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module.relative_to(ROOT)} has {lines} lines"


def test_errors_are_defined_in_one_place() -> None:
    offenders = []
    for module in PACKAGE.rglob("*.py"):
        if module.name == "errors.py" and module.parent == PACKAGE:
            continue
        for number, line in enumerate(module.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("class ") and ("Error(" in line or "Error)" in line.split(":")[0]):
                offenders.append(f"{module.relative_to(ROOT)}:{number}: {line}")
    assert offenders == []


def test_no_sql_outside_the_journal_and_the_store() -> None:
    allowed = set((PACKAGE / "delivery" / "journal").glob("*.py"))
    allowed |= set((PACKAGE / "suppression").glob("*.py"))
    offenders = []
    for module in PACKAGE.rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        if module not in allowed and (".execute(" in text or "sqlite3.connect" in text):
            offenders.append(str(module.relative_to(ROOT)))
    assert offenders == []


def test_every_hint_the_library_gives_is_worded_by_the_cli() -> None:
    """Library errors name no options; each ``hint=`` they carry has CLI wording in HINTS."""
    import re

    from dispatch_mail.cli.errors import HINTS

    used = set()
    for module in PACKAGE.rglob("*.py"):
        if module.parent.name == "cli":
            continue
        used |= set(re.findall(r'hint="(\w+)"', module.read_text(encoding="utf-8")))
    assert used, "no hints found: the scan is broken"
    assert sorted(used - set(HINTS)) == []


def test_library_error_messages_name_no_command_line_options() -> None:
    import re

    pattern = re.compile(r'(?:Error|Unavailable|Missing)\(\s*f?"(?:[^"\n]*\s)?--[a-z]')
    offenders = []
    for module in PACKAGE.rglob("*.py"):
        if module.parent.name == "cli" or module.name == "reference.py":
            continue
        for match in pattern.finditer(module.read_text(encoding="utf-8")):
            offenders.append(f"{module.relative_to(ROOT)}: {match.group(0)}")
    assert offenders == []
