"""The package as a user gets it: `python -m build`, installed into a fresh venv, run there.

`python -m build` makes the sdist and then the wheel *from the sdist*, so a wheel
that builds an issue proves both carry the package data (theme, skeleton, assets,
client data). The builds are isolated, as a user's are: setuptools comes from the
package index (CI has one). The source is copied first, so nothing is written
into the checkout. The venvs see the test interpreter's site-packages, so the
dependencies resolve without downloads; dispatch itself comes from the wheel
(``pip install --no-deps --no-index``), and ``pip check`` proves that enough.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import dispatch_mail
from dispatch_mail.authoring.install_spec import FILL_IN, spec_from_direct_url
from tests.helpers.checkout import ROOT, copy_source, dependencies_only
from tests.helpers.needs import need_module, need_program


def package_data() -> list[str]:
    """Every file of the package that is not Python: the theme, skeleton, assets, data."""
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "dispatch_mail").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def fresh_venv(folder: Path) -> Path:
    """A venv that sees the test interpreter's packages (the dependencies) but not dispatch."""
    run(sys.executable, "-m", "venv", folder)
    python = folder / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    dependencies = dependencies_only(folder.parent / f"{folder.name}-dependencies")
    (Path(purelib.strip()) / "test-interpreter-packages.pth").write_text(
        f"{dependencies}\n", encoding="utf-8"
    )
    return folder / "bin"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_module("build", "the test extra: pip install -e '.[test]'")
    work = tmp_path_factory.mktemp("packaging")
    source = copy_source(work / "source")
    run(sys.executable, "-m", "build", "--outdir", work / "dist", source)
    return work / "dist"


def test_the_sdist_and_the_wheel_carry_the_package_data(dist: Path) -> None:
    version = dispatch_mail.__version__
    (wheel,) = dist.glob(f"dispatch_mail-{version}-*.whl")
    (sdist,) = dist.glob(f"dispatch_mail-{version}.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    in_sdist = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    data = package_data()
    assert "dispatch_mail/render/theme/email.mjml.j2" in data and len(data) > 40
    for name in data:
        assert name in in_wheel, f"{name} is missing from {wheel.name}"
        assert name in in_sdist, f"{name} is missing from {sdist.name}"
    assert {"README.md", "pyproject.toml"} <= in_sdist
    entry_points = zipfile.ZipFile(wheel).read(
        f"dispatch_mail-{version}.dist-info/entry_points.txt"
    )
    assert b"dispatch = dispatch_mail.cli:main" in entry_points


def test_the_installed_wheel_builds_an_issue_and_pins_itself_for_ci(
    dist: Path, tmp_path: Path
) -> None:
    """As from an index (--find-links: pip records no direct URL): init pins that version."""
    bin_dir = fresh_venv(tmp_path / "venv")
    version = dispatch_mail.__version__
    # --ignore-installed: the test interpreter's own dispatch (editable) must not satisfy it
    run(
        bin_dir / "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
        "--find-links", dist, f"dispatch-mail=={version}",
    )  # fmt: skip
    assert "No broken requirements" in run(bin_dir / "pip", "check")
    imported = "import dispatch_mail; print(dispatch_mail.__file__)"
    where = run(bin_dir / "python", "-c", imported, cwd=tmp_path)
    assert str(tmp_path / "venv") in where, f"the venv imports dispatch from {where}"
    assert run(bin_dir / "dispatch", "--version").strip() == f"dispatch, version {version}"

    examples = shutil.copytree(ROOT / "examples", tmp_path / "examples")
    printed = run(bin_dir / "dispatch", "build", "minimal", "--out", tmp_path / "out", cwd=examples)
    assert "built minimal" in printed
    for name in ("email.html", "email.txt", "email.mjml", "email.eml"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    assert "</html>" in (tmp_path / "out" / "email.html").read_text(encoding="utf-8")

    printed = run(bin_dir / "dispatch", "init", "news", cwd=tmp_path)
    workflow = (tmp_path / "news/.github/workflows/newsletter.yml").read_text(encoding="utf-8")
    assert f"python -m pip install dispatch-mail=={version} " in workflow
    assert "FILL IN" not in workflow and "note:" not in printed


def test_installed_from_git_the_commit_is_what_ci_installs(tmp_path: Path) -> None:
    """pip's own record of a git install: a local repository is marked, a reachable one pinned."""
    need_program("git", "Debian: apt-get install git")
    repo = copy_source(tmp_path / "repo")
    git = ("git", "-C", repo, "-c", "user.name=Test", "-c", "user.email=test@example.org")
    run(*git, "init", "-q")
    run(*git, "add", "-A")
    run(*git, "commit", "-q", "-m", "the source")
    commit = run(*git, "rev-parse", "HEAD").strip()
    bin_dir = fresh_venv(tmp_path / "venv")
    # a bare URL: pip before 24 refuses "name @ git+file:///…" (a URL without a host)
    run(bin_dir / "pip", "install", "--no-deps", f"git+{repo.as_uri()}")

    record = run(
        bin_dir / "python", "-c",
        "from importlib.metadata import distribution as d; "
        "print(d('dispatch-mail').read_text('direct_url.json'))",
        cwd=tmp_path,
    )  # fmt: skip
    assert json.loads(record)["vcs_info"]["commit_id"] == commit
    printed = run(bin_dir / "dispatch", "init", "news", cwd=tmp_path)
    workflow = (tmp_path / "news/.github/workflows/newsletter.yml").read_text(encoding="utf-8")
    assert f"# {FILL_IN}" in workflow and "exit 1" in workflow  # CI says what to do
    assert "note: " in printed and commit in printed and "FILL IN" in printed

    # the same record, had the repository been one that CI can reach
    reachable = record.replace(repo.as_uri(), "https://git.example.org/dispatch.git")
    spec = spec_from_direct_url(reachable, dispatch_mail.__version__)
    assert spec.requirement == f"dispatch-mail @ git+https://git.example.org/dispatch.git@{commit}"

