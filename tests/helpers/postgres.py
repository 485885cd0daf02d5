"""A throwaway PostgreSQL cluster for the tests: started once a session, a fresh database a test.

``postgres_url`` (session scope) runs ``initdb`` and ``pg_ctl`` from Debian's
``/usr/lib/postgresql/*/bin`` (or PATH) into a temp folder, listening on
127.0.0.1 on a free port with fsync off, and yields the URL of a database that a
role of its own logs in to with a password (scram-sha-256 over TCP, like a real
server): ``postgresql://dispatch:…@127.0.0.1:PORT/dispatch``. The cluster is
stopped (``-m immediate``) and its folder removed at the end of the session.
``fresh_postgres_url`` (function scope) gives each test a database of its own,
created from an empty template (cheap) and dropped afterwards.

initdb refuses to run as root: as root the cluster belongs to the ``postgres``
user (or ``nobody``) and every server command runs through ``runuser -u USER --``.
Without initdb the tests that use it skip, except under CI=true, where they fail.

A test module uses it by importing the fixtures (pytest finds them by name)::

    from tests.helpers.postgres import fresh_postgres_url, postgres_url  # noqa: F401

or, for every module at once, with ``pytest_plugins = ["tests.helpers.postgres"]`` in
tests/conftest.py.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROLE = "dispatch"
PASSWORD = "pg-test-secret-7d1f"  # a test's own; the tests check it never shows in a message
DATABASE = "dispatch"
TEMPLATE = "dispatch_template"  # empty; each test's database is a copy
_numbers = itertools.count(1)


def find_initdb() -> Path | None:
    """Debian's newest initdb, else the one on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_of)
    if found:
        return Path(found[-1])
    on_path = shutil.which("initdb")
    return Path(on_path) if on_path else None


def _version_of(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Cluster:
    """One running cluster: where it is, how to reach it, as whom its commands run."""

    bindir: Path
    folder: Path
    port: int
    user: str | None  # the OS user the server runs as, when we are root

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def sockets(self) -> Path:
        return self.folder / "sockets"

    def command(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self.user, "--", *argv] if self.user else argv

    def run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            self.command(tool, *args), capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}{result.stderr}")

    def admin(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as the superuser, over the cluster's Unix socket."""
        import psycopg

        with psycopg.connect(
            host=str(self.sockets),
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
        ) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def url(self, database: str) -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{database}"


def start_cluster() -> Cluster:
    initdb = find_initdb()
    if initdb is None:
        reason = "PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the PostgreSQL tests must run, not skip: {reason}")
        pytest.skip(reason)
    user = _server_user() if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="dispatch-pg-"))
    cluster = Cluster(initdb.parent, folder, _free_port(), user)
    cluster.sockets.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (folder, cluster.sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        cluster.run(
            "initdb",
            "-D",
            str(cluster.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {cluster.sockets} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(folder / "server.log")
        cluster.run("pg_ctl", "start", "-w", "-D", str(cluster.data), "-l", log, "-o", options)
        cluster.admin(
            f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'",
            f"CREATE DATABASE {DATABASE} OWNER {ROLE}",
            f"CREATE DATABASE {TEMPLATE} OWNER {ROLE}",
        )
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def _server_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def stop_cluster(cluster: Cluster) -> None:
    if (cluster.data / "postmaster.pid").exists():
        subprocess.run(
            cluster.command("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(cluster.data)),
            capture_output=True,
            check=False,
            timeout=60,
        )
    shutil.rmtree(cluster.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: Cluster) -> str:
    """The URL of the session's database, with a password: shared by every test that takes it."""
    return postgres_cluster.url(DATABASE)


@pytest.fixture
def fresh_postgres_url(postgres_cluster: Cluster) -> Iterator[str]:
    """The URL of a new, empty database of this test's own, dropped when it ends."""
    name = f"dispatch_test_{os.getpid()}_{next(_numbers)}"
    postgres_cluster.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} OWNER {ROLE}")
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
