"""Skip a test whose tool is missing, except under CI=true, where a missing tool fails it."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so this test must run, not skip: {reason}", pytrace=False)
    pytest.skip(reason)


def need_program(name: str, install: str) -> None:
    if shutil.which(name) is None:
        _missing(f"needs {name} ({install})")


def need_module(name: str, install: str) -> None:
    if importlib.util.find_spec(name) is None:
        _missing(f"needs the Python package {name} ({install})")
