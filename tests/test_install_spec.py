"""`dispatch init`'s CI workflow installs what can be installed again: given, pinned, or marked.

The records are direct_url.json as pip writes them (PEP 610); tests/test_packaging.py
has pip write real ones, from an index and from a git repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dispatch_mail.authoring.install_spec import FILL_IN, running_install_spec, spec_from_direct_url
from dispatch_mail.cli import main

COMMIT = "3f1c2a9e0b7d4c5e6f708192a3b4c5d6e7f80912"
RECORDS = {
    "git over https": (
        {
            "url": "https://github.com/example/dispatch.git",
            "vcs_info": {"commit_id": COMMIT, "requested_revision": "v0.1.0", "vcs": "git"},
        },
        f"dispatch-mail @ git+https://github.com/example/dispatch.git@{COMMIT}",
    ),
    "git, a subdirectory": (
        {
            "url": "https://git.example.org/mono.git",
            "vcs_info": {"commit_id": COMMIT, "vcs": "git"},
            "subdirectory": "python",
        },
        f"dispatch-mail @ git+https://git.example.org/mono.git@{COMMIT}#subdirectory=python",
    ),
    "a wheel on a web server": (
        {
            "url": "https://files.example.org/dispatch_mail-0.1.0-py3-none-any.whl",
            "archive_info": {"hash": "sha256=00", "hashes": {"sha256": "00"}},
        },
        "dispatch-mail @ https://files.example.org/dispatch_mail-0.1.0-py3-none-any.whl",
    ),
    "an editable checkout": ({"dir_info": {"editable": True}, "url": "file:///work/main"}, None),
    "a local wheel": (
        {"archive_info": {}, "url": "file:///tmp/dist/dispatch_mail-0.1.0-py3-none-any.whl"},
        None,
    ),
    "a local git repository": (
        {"url": "file:///srv/dispatch", "vcs_info": {"commit_id": COMMIT, "vcs": "git"}},
        None,
    ),
}


@pytest.mark.parametrize("record", RECORDS, ids=list(RECORDS))
def test_a_requirement_only_when_ci_can_reach_it(record: str) -> None:
    content, expected = RECORDS[record]
    spec = spec_from_direct_url(json.dumps(content), "0.1.0")
    assert spec.requirement == expected
    assert spec.known == (expected is not None)
    if expected is None:
        assert content["url"] in spec.source  # the note says what was found


def test_installed_from_an_index_pins_the_version() -> None:
    assert spec_from_direct_url(None, "0.4.2").requirement == "dispatch-mail==0.4.2"
    assert spec_from_direct_url("{not json", "0.4.2").requirement is None


def workflow(folder: Path) -> str:
    text = (folder / ".github/workflows/newsletter.yml").read_text(encoding="utf-8")
    yaml.safe_load(text)  # still a workflow GitHub can read
    return text


def test_init_writes_the_given_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = "dispatch-mail @ git+https://git.example.org/dispatch.git@v0.1.0"
    result = CliRunner().invoke(main, ["init", "news", "--install-spec", spec])
    assert result.exit_code == 0, result.output
    text = workflow(tmp_path / "news")
    assert f"python -m pip install '{spec}' \"playwright>=1.45\"" in text
    assert "FILL IN" not in text and "note:" not in result.output


@pytest.mark.parametrize("bad", ["", "   ", "dispatch-mail\nrm -rf /"])
def test_init_refuses_a_spec_that_is_not_one_line(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "news", "--install-spec", bad])
    assert result.exit_code == 2
    assert "--install-spec" in result.output and "one non-empty line" in result.output
    assert not (tmp_path / "news").exists()


def test_init_from_a_checkout_marks_the_line_to_fill_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite runs from a checkout (an editable install, scripts/test.sh): no use to CI."""
    running = running_install_spec()
    if running.known:
        pytest.skip(f"this dispatch came from {running.source}, which CI can install")
    assert "file:" in running.source or "source folder" in running.source
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["init", "news"])
    assert result.exit_code == 0, result.output
    text = workflow(tmp_path / "news")
    assert f"# {FILL_IN}" in text
    assert "exit 1" in text  # CI stops at that step, saying why, not at a missing package
    note = [line for line in result.output.splitlines() if line.startswith("note: ")]
    assert len(note) == 1 and "FILL IN" in note[0] and "--install-spec" in note[0]
