"""The suppression store on a real SQLite file and a real PostgreSQL cluster: one set of rules.

Every test that takes ``backend`` runs twice, once per database; the PostgreSQL
run gets a fresh database of its own (tests/helpers/postgres.py).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from dispatch_mail.errors import StoreError
from dispatch_mail.project.settings import Project
from dispatch_mail.suppression import (
    ALL_LISTS,
    ReturnEvent,
    SoftBouncePolicy,
    Suppression,
    SuppressionStore,
    open_store,
)
from dispatch_mail.suppression.migrations import MIGRATIONS, Migration
from dispatch_mail.suppression.postgres import PostgresStore
from dispatch_mail.suppression.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[1]
POLICY = SoftBouncePolicy(limit=3, window_days=30)
DAY = 86400.0
NOW = 1_790_000_000.0
SECRET = "s3cret-of-the-test"


def password_of(url: str) -> str:
    return urlsplit(url).password or ""


@dataclass
class Backend:
    """One database to test against: how to open a store on it and read its tables directly."""

    name: str
    target: str  # the SQLite path or the PostgreSQL URL
    open: Callable[..., SuppressionStore]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.name == "sqlite":
            with sqlite3.connect(self.target) as conn:
                return list(conn.execute(sql).fetchall())
        import psycopg

        with psycopg.connect(self.target) as conn:
            return list(conn.execute(sql.encode()).fetchall())


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "store" / "suppressions.sqlite"
        return Backend("sqlite", str(path), lambda **kw: SqliteStore(path, **kw))
    url: str = request.getfixturevalue("fresh_postgres_url")
    return Backend("postgresql", url, lambda **kw: PostgresStore(url, **kw))


@pytest.fixture
def store(backend: Backend) -> Iterator[SuppressionStore]:
    with backend.open() as opened:
        yield opened


def event(kind: str, email: str, evidence: str, *, at: float = NOW, **more: Any) -> ReturnEvent:
    source = more.pop("source", "bounce")
    return ReturnEvent(kind, email, source, evidence, at, **more)  # type: ignore[arg-type]


def manual(email: str, list_name: str = ALL_LISTS, reason: str = "manual") -> Suppression:
    return Suppression(email, list_name, reason, "manual", NOW)  # type: ignore[arg-type]


# ------------------------------------------------------------------ add, read, remove
def test_add_list_and_remove(store: SuppressionStore, backend: Backend) -> None:
    assert store.add(manual("Ann@Example.org"))
    assert not store.add(manual("ann@example.ORG"))  # the same mailbox: nothing new
    assert store.add(manual("bob@example.org", "news", "unsubscribed"))
    assert [s.email for s in store.entries()] == ["Ann@Example.org", "bob@example.org"]
    assert [s.email for s in store.entries(reason="unsubscribed")] == ["bob@example.org"]
    assert store.remove("ANN@example.org") == 1
    assert store.remove("ann@example.org") == 0
    assert [s.email for s in store.entries()] == ["bob@example.org"]
    lifted = backend.query("SELECT email, reason, lifted_by FROM dispatch_lifted")
    assert lifted == [("Ann@Example.org", "manual", "manual")]  # the history keeps it


def test_a_list_sees_its_own_suppressions_and_every_lists(store: SuppressionStore) -> None:
    store.add(manual("all@example.org"))
    store.add(manual("news@example.org", "news"))
    store.add(manual("other@example.org", "other"))
    assert sorted(store.suppressed("news")) == ["all@example.org", "news@example.org"]
    assert sorted(store.suppressed("other")) == ["all@example.org", "other@example.org"]
    asked = ["NEWS@example.org", "other@example.org", "nobody@example.org"]
    assert sorted(store.suppressed("news", asked)) == ["news@example.org"]
    assert store.suppressed("news", []) == {}
    assert [s.email for s in store.entries(list_name="news")] == [
        "all@example.org",
        "news@example.org",
    ]
    assert store.remove("news@example.org", "other") == 0
    assert store.remove("news@example.org", "news") == 1


def test_a_batch_larger_than_one_query_is_looked_up_whole(store: SuppressionStore) -> None:
    for i in range(0, 1300, 100):
        store.add(manual(f"user{i}@example.org"))
    asked = [f"user{i}@example.org" for i in range(1300)]
    assert len(store.suppressed("news", asked)) == 13


# ------------------------------------------------------------------ what each event means
def test_an_unsubscribe_suppresses_on_its_list_only(store: SuppressionStore) -> None:
    outcome = store.apply(event("unsubscribe", "a@example.org", "t1", list="news"), POLICY)
    assert outcome.suppressed is not None and outcome.suppressed.list == "news"
    assert outcome.suppressed.reason == "unsubscribed"
    assert "a@example.org" in store.suppressed("news")
    assert "a@example.org" not in store.suppressed("other")
    store.apply(event("unsubscribe", "b@example.org", "t2", source="mailto"), POLICY)
    assert store.suppressed("other")["b@example.org"].list == ALL_LISTS  # no list: every list


@pytest.mark.parametrize("kind", ["hard-bounce", "complaint"])
def test_a_hard_bounce_or_complaint_suppresses_everywhere(
    store: SuppressionStore, kind: str
) -> None:
    outcome = store.apply(
        event(kind, "a@example.org", "m1", list="news", issue="2026-01", detail="5.1.1"), POLICY
    )
    assert not outcome.duplicate
    assert outcome.suppressed == Suppression(
        "a@example.org",
        ALL_LISTS,
        kind,  # type: ignore[arg-type]
        "bounce",
        NOW,
        "2026-01",
        "m1",
    )
    assert store.suppressed("other")["a@example.org"].reason == kind
    assert store.seen("m1") and not store.seen("m2")


def test_the_same_evidence_applies_once(store: SuppressionStore, backend: Backend) -> None:
    first = store.apply(event("soft-bounce", "a@example.org", "same"), POLICY)
    again = store.apply(event("soft-bounce", "a@example.org", "same"), POLICY)
    assert (first.duplicate, first.soft_count) == (False, 1)
    assert again.duplicate and again.suppressed is None
    assert backend.query("SELECT COUNT(*) FROM dispatch_events") == [(1,)]


def test_soft_bounces_suppress_when_enough_fall_in_the_window(store: SuppressionStore) -> None:
    address = "soft@example.org"
    old = store.apply(event("soft-bounce", address, "s0", at=NOW - 45 * DAY), POLICY)
    assert old.soft_count == 1
    counts = []
    for n, days_ago in enumerate([10, 5]):
        outcome = store.apply(
            event("soft-bounce", address, f"s{n + 1}", at=NOW - days_ago * DAY), POLICY
        )
        counts.append(outcome.soft_count)
        assert outcome.suppressed is None
    assert counts == [1, 2]  # the one of 45 days before is outside every window
    assert address not in store.suppressed("news")
    third = store.apply(event("soft-bounce", address, "s3", at=NOW), POLICY)
    assert third.soft_count == 3
    assert third.suppressed is not None and third.suppressed.reason == "soft-bounce"
    assert store.suppressed("news")[address].list == ALL_LISTS


def test_resubscribe_lifts_an_unsubscribe_but_never_a_bounce(
    store: SuppressionStore, backend: Backend
) -> None:
    store.apply(event("unsubscribe", "u@example.org", "u1", list="news"), POLICY)
    store.apply(event("hard-bounce", "h@example.org", "h1"), POLICY)
    store.apply(event("unsubscribe", "h@example.org", "h2", list="news"), POLICY)
    back = store.apply(
        event("resubscribe", "u@example.org", "r1", list="news", source="confirmation-page"),
        POLICY,
    )
    assert back.lifted == 1
    assert store.suppressed("news", ["u@example.org"]) == {}
    bounced = store.apply(event("resubscribe", "h@example.org", "r2", list="news"), POLICY)
    assert bounced.lifted == 1  # its unsubscribe; the bounce stays
    assert store.suppressed("news")["h@example.org"].reason == "hard-bounce"
    history = backend.query("SELECT email, lifted_by, lifted_evidence FROM dispatch_lifted")
    assert sorted(history) == [
        ("h@example.org", "bounce", "r2"),
        ("u@example.org", "confirmation-page", "r1"),
    ]


def test_a_bounce_outranks_an_unsubscribe_from_every_list(store: SuppressionStore) -> None:
    store.apply(event("unsubscribe", "a@example.org", "u1"), POLICY)  # every list
    store.apply(event("complaint", "a@example.org", "c1", source="feedback-report"), POLICY)
    assert store.suppressed("news")["a@example.org"].reason == "complaint"
    lifted = store.apply(event("resubscribe", "a@example.org", "r1"), POLICY)
    assert lifted.lifted == 0 and "a@example.org" in store.suppressed("news")


# ------------------------------------------------------------------ many writers at once
WORKER = """
import json, sys
from pathlib import Path
from dispatch_mail.suppression import ReturnEvent, SoftBouncePolicy
target, events = sys.argv[1], json.loads(sys.argv[2])
if target.startswith("postgresql"):
    from dispatch_mail.suppression.postgres import PostgresStore as Store
else:
    from dispatch_mail.suppression.sqlite import SqliteStore as Store
    target = Path(target)
with Store(target) as store:
    print("ready", flush=True)
    sys.stdin.readline()
    outcomes = [store.apply(ReturnEvent(**e), SoftBouncePolicy(3, 30)) for e in events]
    print(json.dumps([[o.event.evidence, o.duplicate, o.soft_count] for o in outcomes]))
"""


def test_two_processes_apply_each_evidence_exactly_once(backend: Backend) -> None:
    # both create the schema at once (each migration step runs once), then apply at once
    shared = [
        {"kind": "hard-bounce", "email": f"h{i}@example.org", "source": "bounce",
         "evidence": f"shared-{i}", "at": NOW}
        for i in range(20)
    ]  # fmt: skip
    workers = []
    for n in range(2):
        own = [
            {"kind": "soft-bounce", "email": "soft@example.org", "source": "webhook:ses",
             "evidence": f"own-{n}-{i}", "at": NOW}
            for i in range(10)
        ]  # fmt: skip
        events = own + (shared[::-1] if n else shared)
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, backend.target, json.dumps(events)],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results: list[tuple[str, bool, int]] = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        results += json.loads(out)
    applied = [evidence for evidence, duplicate, _ in results if not duplicate]
    assert sorted(applied) == sorted([str(e["evidence"]) for e in shared] + [
        f"own-{n}-{i}" for n in range(2) for i in range(10)
    ])  # fmt: skip
    counts = sorted(count for evidence, _, count in results if evidence.startswith("own-"))
    assert counts == list(range(1, 21))  # one address's soft bounces are counted one at a time
    assert backend.query("SELECT COUNT(*) FROM dispatch_events") == [(40,)]
    with backend.open() as store:
        found = store.suppressed("news")
    assert len(found) == 21 and found["soft@example.org"].reason == "soft-bounce"


def test_one_store_serves_many_threads(store: SuppressionStore, backend: Backend) -> None:
    def work(n: int) -> None:
        for i in range(15):
            store.apply(event("hard-bounce", f"t{n}-{i}@example.org", f"t{n}-{i}"), POLICY)
            store.suppressed("news", [f"t{n}-{i}@example.org"])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.suppressed("news")) == 60
    assert backend.query("SELECT COUNT(*) FROM dispatch_events") == [(60,)]


# ------------------------------------------------------------------ the schema over time
def versions(backend: Backend) -> list[int]:
    return [row[0] for row in backend.query("SELECT version FROM dispatch_schema ORDER BY 1")]


def test_an_old_store_is_migrated_forward_with_its_data(backend: Backend) -> None:
    with backend.open(migrations=MIGRATIONS[:1]) as old:
        old.add(manual("kept@example.org"))
    assert versions(backend) == [1]
    with backend.open() as store:
        assert [s.email for s in store.entries()] == ["kept@example.org"]
        assert store.remove("kept@example.org") == 1  # needs the history table of version 2
    assert versions(backend) == [1, 2]


def test_a_failing_step_leaves_the_previous_version_intact(backend: Backend) -> None:
    broken = Migration(
        2,
        "a step that fails halfway",
        ("CREATE TABLE dispatch_halfway (id INTEGER)", "CREATE TABLE dispatch_suppressions (x)"),
    )
    backend.open(migrations=MIGRATIONS[:1]).close()
    with pytest.raises(StoreError) as failure:
        backend.open(migrations=(MIGRATIONS[0], broken))
    assert "\n" not in str(failure.value)
    assert versions(backend) == [1]
    tables = (
        "SELECT name FROM sqlite_master WHERE name = 'dispatch_halfway'"
        if backend.name == "sqlite"
        else "SELECT tablename FROM pg_tables WHERE tablename = 'dispatch_halfway'"
    )
    assert backend.query(tables) == []  # the step's first statement was rolled back too
    with backend.open() as store:  # the real step 2 still runs afterwards
        assert store.entries is not None
    assert versions(backend) == [1, 2]


def test_a_store_from_a_newer_dispatch_is_refused(backend: Backend) -> None:
    backend.open().close()
    newer = Migration(99, "from the future", ("CREATE TABLE dispatch_future (id INTEGER)",))
    backend.open(migrations=(*MIGRATIONS, newer)).close()
    with pytest.raises(StoreError, match="written by a newer dispatch"):
        backend.open()


# ------------------------------------------------------------------ failures, in one line
def test_an_unreachable_postgresql_is_one_line_without_the_password() -> None:
    with socket_closed() as port:
        url = f"postgresql://dispatch:{SECRET}@127.0.0.1:{port}/news"
        with pytest.raises(StoreError) as failure:
            PostgresStore(url)
    message = str(failure.value)
    assert "\n" not in message and SECRET not in message
    assert message.startswith(f"postgresql://dispatch@127.0.0.1:{port}/news: ")
    assert failure.value.location == f"postgresql://dispatch@127.0.0.1:{port}/news"


def test_a_wrong_password_is_refused_in_one_line(postgres_url: str) -> None:
    wrong = postgres_url.replace(f":{password_of(postgres_url)}@", ":not-the-password@")
    with pytest.raises(StoreError, match="password authentication failed") as failure:
        PostgresStore(wrong)
    assert "not-the-password" not in str(failure.value) and "\n" not in str(failure.value)


def test_a_dropped_connection_is_opened_again(fresh_postgres_url: str) -> None:
    import psycopg

    with PostgresStore(fresh_postgres_url) as store:
        store.add(manual("a@example.org"))
        with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        assert "a@example.org" in store.suppressed("news")


def test_a_foreign_sqlite_file_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a dispatch suppression store"):
        SqliteStore(path)
    assert path.read_bytes() == before
    assert not path.with_name("other.sqlite-wal").exists()
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    with pytest.raises(StoreError, match="not an SQLite file"):
        SqliteStore(text)
    assert text.read_text() == "not a database\n"


def test_a_store_locked_too_long_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dispatch_mail.suppression import sqlite as backend_module

    monkeypatch.setattr(backend_module, "BUSY_TIMEOUT", 0.2)
    path = tmp_path / "busy.sqlite"
    with SqliteStore(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process, writing and not letting go
        try:
            with pytest.raises(StoreError) as failure:
                store.add(manual("a@example.org"))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert str(failure.value) == (
            f"{path}: cannot use the suppression store: "
            "another process kept it locked for more than 0.2 s"
        )
        assert store.add(manual("a@example.org"))  # the store works again once it is free


# ------------------------------------------------------------------ which store a project uses
def test_open_store_picks_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_postgres_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPATCH_DATABASE_URL", raising=False)
    project = _project(tmp_path)
    with open_store(project) as local:
        assert local.location == ".dispatch/suppressions.sqlite"
    assert (tmp_path / ".dispatch" / "suppressions.sqlite").is_file()
    monkeypatch.setenv("DISPATCH_DATABASE_URL", fresh_postgres_url)
    with open_store(project) as shared:
        password = password_of(fresh_postgres_url)
        assert shared.location == fresh_postgres_url.replace(f":{password}@", "@")
    with pytest.raises(StoreError, match="'mysql:'") as failure:
        open_store(project, url="mysql://u:secret@db/news")
    assert failure.value.hint is None and "secret" not in str(failure.value)


def _project(root: Path) -> Project:
    from dispatch_mail.project.loader import load_project
    from tests.helpers.project import create_project

    return load_project(create_project(root))


class socket_closed:
    """A loopback port that nothing listens on (bound, never listening, for the test's length)."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        port: int = self._socket.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._socket.close()
