"""The run keeps to its own folders: pytest's temp folders, HOME, and no writes into the user's."""

from __future__ import annotations

import getpass
import os
import tempfile
from pathlib import Path

import pytest

from tests.conftest import RUN_HOME
from tests.helpers.home import RunHome, WroteIntoHome

SHARED = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"


@pytest.fixture
def run_home(pytestconfig: pytest.Config) -> RunHome:
    return pytestconfig.stash[RUN_HOME]


def test_temp_folders_are_the_runs_own(tmp_path: Path, run_home: RunHome) -> None:
    assert tmp_path.is_relative_to(run_home.temp)
    assert os.environ["HOME"] == str(run_home.folder)
    assert not tmp_path.is_relative_to(SHARED)


@pytest.mark.parametrize("where", ["pytest-of-user", "home"])
def test_a_write_into_shared_folders_is_refused(where: str, run_home: RunHome) -> None:
    if where == "home" and run_home.home is None:
        pytest.skip("the user's home is /: nothing to guard")
    folder = SHARED if where == "pytest-of-user" else Path(run_home.home or "/")
    target = folder / "dispatch-guard-probe" / "file"
    with pytest.raises(WroteIntoHome):
        target.parent.mkdir(parents=True)
    with pytest.raises(WroteIntoHome):
        target.write_text("never")
    assert len(run_home.refused()) == 2  # reported: the test that swallowed them would fail
    assert not target.parent.exists()


def test_the_checkout_and_the_runs_folder_stay_writable(tmp_path: Path, run_home: RunHome) -> None:
    (tmp_path / "file").write_text("ours")
    (run_home.folder / ".cache" / "probe").mkdir(parents=True)
    assert run_home.refused() == []
