"""The fixtures of the whole suite; their code lives in tests/helpers/.

Everything here writes real files and runs real servers and the real code;
nothing of ours is mocked. Two guards hold for every test: no connection may
leave the machine, and nothing may be written into the user's home (the run
has a temp home of its own, template cache included).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers.home import RunHome
from tests.helpers.http_server import LocalHttpServer, Respond
from tests.helpers.network import loopback_only
from tests.helpers.project import ISSUE_YAML, PROJECT_YAML, Project, create_project
from tests.helpers.send import SECRET
from tests.helpers.smtp_server import Recorder, SmtpServer

# a throwaway PostgreSQL cluster for the tests that share a store: postgres_url, fresh_postgres_url
pytest_plugins = ("tests.helpers.postgres",)

if TYPE_CHECKING:
    import trustme

RUN_HOME = pytest.StashKey[RunHome]()
FAILED = pytest.StashKey[bool]()  # whether a phase of the test failed so far


# ------------------------------------------------------------------ the guards
@pytest.hookimpl(tryfirst=True)  # before pytest's tmp_path plugin reads basetemp
def pytest_configure(config: pytest.Config) -> None:
    """The temp home is set before any test module is imported, for child processes too.

    pytest's temp folders go into it too (``--basetemp``), not into the shared
    ``pytest-of-<user>``: concurrent runs in different clones never meet.
    """
    home = RunHome.enter(allowed=(config.rootpath,))
    config.stash[RUN_HOME] = home
    if config.option.basetemp is None:
        config.option.basetemp = str(home.temp)


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(RUN_HOME, None)
    if home is not None:
        home.leave()


@pytest.fixture(autouse=True, scope="session")
def home_untouched_by_the_run(pytestconfig: pytest.Config) -> Iterator[None]:
    """After the last test: the user's own dispatch folders are as the run found them."""
    yield
    changes = pytestconfig.stash[RUN_HOME].changes()
    if changes:
        pytest.fail(
            "the user's dispatch folders changed during the test run (a child process of a test "
            "wrote there, or a dispatch run outside the tests did): " + "; ".join(changes),
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash[FAILED] = item.stash.get(FAILED, False) or report.failed
    return report


@pytest.fixture(autouse=True)
def home_untouched(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test whose code wrote into the user's home and caught the refusal."""
    home = pytestconfig.stash[RUN_HOME]
    home.refused()
    yield
    refused = home.refused()
    if refused and not request.node.stash.get(FAILED, False):
        pytest.fail("this test wrote into the user's home: " + "; ".join(refused), pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def no_network() -> Iterator[None]:
    """Refuse every connection except to loopback addresses, for the whole session."""
    with loopback_only():
        yield


# ------------------------------------------------------------------ projects in temp folders
ProjectWriter = Callable[..., Path]


@pytest.fixture
def write_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectWriter:
    """Write ``dispatch.yaml`` and ``issues/<slug>/issue.yaml`` into tmp_path; the issue folder.

    The working folder becomes tmp_path, so problems name the files as a user
    would see them: ``dispatch.yaml`` and ``issues/<slug>/issue.yaml``.
    Text is dedented; bytes are written as they are. ``templates`` maps file
    names to the project's own template overrides.
    """
    monkeypatch.chdir(tmp_path)

    def write(
        issue: str | bytes = ISSUE_YAML,
        config: str | bytes = PROJECT_YAML,
        *,
        slug: str = "test",
        templates: dict[str, str] | None = None,
    ) -> Path:
        create_project(
            tmp_path,
            config=_dedent(config),
            issues={slug: _dedent(issue)},
            templates={name: _dedent(text) for name, text in (templates or {}).items()},
        )
        return tmp_path / "issues" / slug

    return write


def _dedent(content: str | bytes) -> str | bytes:
    return textwrap.dedent(content) if isinstance(content, str) else content


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The send tests' project in tmp_path/news, with the unsubscribe secret and no SMTP login."""
    monkeypatch.setenv("DISPATCH_UNSUBSCRIBE_SECRET", SECRET)
    for name in (
        "DISPATCH_SMTP_USER",
        "DISPATCH_SMTP_PASSWORD",
        "DISPATCH_DKIM_KEY_FILE",
        "DISPATCH_DEBUG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return Project(tmp_path / "news")


# ------------------------------------------------------------------ servers on 127.0.0.1
@pytest.fixture
def server() -> Iterator[SmtpServer]:
    """A real SMTP server that records what it gets (``server.handler``) and fails on request."""
    with SmtpServer() as running:
        yield running


@pytest.fixture
def recorder(server: SmtpServer) -> Recorder:
    return server.handler


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A certificate authority of the session's own, for the TLS servers."""
    authority: trustme.CA = pytest.importorskip("trustme").CA()
    return authority


@pytest.fixture(scope="session")
def cafile(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def http_server() -> Iterator[Callable[[Respond], LocalHttpServer]]:
    """Start web servers on 127.0.0.1: ``http_server(respond)``; all stop after the test."""
    started: list[LocalHttpServer] = []

    def start(respond: Respond) -> LocalHttpServer:
        started.append(LocalHttpServer(respond).start())
        return started[-1]

    yield start
    for running in started:
        running.stop()
