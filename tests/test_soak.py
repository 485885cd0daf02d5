"""The fault soak: a real `dispatch send` process against a server that misbehaves on purpose,
SIGKILLed at random moments and restarted until it is done; then the server's own record is held
against the journal.

The server (tests/helpers/faultserver.py) runs in a process of its own and appends every
message it accepts, with its Message-ID, to a log the sender cannot touch: that
log is the ground truth. benchmarks/soak.py runs the same soak at 100,000
recipients and writes its figures into docs/reliability.md.

    SOAK_SEED=7 SOAK_RECIPIENTS=5000 python -m pytest -q tests/test_soak.py -s
"""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers.faultserver import KINDS, FaultPlan
from tests.helpers.send import run
from tests.helpers.soak import Soak

SEED = int(os.environ.get("SOAK_SEED", "2026"))
RECIPIENTS = int(os.environ.get("SOAK_RECIPIENTS", "2000"))
CONCURRENCY = 4
CRASHES = 8


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("soak")
    result = Soak(
        folder,
        recipients=RECIPIENTS,
        concurrency=CONCURRENCY,
        seed=SEED,
        crashes=CRASHES,
        budget=150,
    ).run()
    return folder, result


def test_everyone_deliverable_is_reached_and_nothing_else_goes_wrong(soak, capsys):
    _, result = soak
    with capsys.disabled():
        print(f"\n[{result.summary()}]")
    assert result.problems == [], "\n".join(result.problems[:20])
    assert result.lost == 0
    assert result.reached == result.deliverable
    assert len(result.crashes) == CRASHES
    assert all(len(c.in_flight) <= CONCURRENCY for c in result.crashes)
    assert result.duplicates_crash <= CONCURRENCY * len(result.crashes)
    assert result.journal == {"sent": result.deliverable, "failed": result.permanent}


def test_every_kind_of_fault_was_injected(soak):
    _, result = soak
    missing = [kind for kind in KINDS if not result.faults.get(kind)]
    assert not missing, f"the soak proved nothing about {missing}: {result.faults}"
    assert any(c.in_flight for c in result.crashes), "no crash caught a message in flight"


def test_the_decisions_are_fixed_by_the_seed():
    """Whatever the timing, the first try of each address meets the same fault in every run."""
    a, b = FaultPlan(seed=SEED), FaultPlan(seed=SEED)
    other = FaultPlan(seed=SEED + 1)
    addresses = [f"r{i:06d}@example.com" for i in range(500)]
    draws = [(a.rcpt_fault(x, 1), a.data_fault(x, 1), a.is_permanent(x)) for x in addresses]
    assert draws == [(b.rcpt_fault(x, 1), b.data_fault(x, 1), b.is_permanent(x)) for x in addresses]
    assert draws != [
        (other.rcpt_fault(x, 1), other.data_fault(x, 1), other.is_permanent(x)) for x in addresses
    ]
    assert all(a.rcpt_fault(x, a.faulty_tries + 1) is None for x in addresses), (
        "faults end after faulty_tries"
    )


def test_status_reports_what_the_server_saw(soak):
    folder, result = soak
    proc = run(
        [
            "status",
            str(folder / "news" / "issues" / "one"),
            "--journal",
            str(folder / "send.journal"),
            "--format",
            "json",
        ],
        folder,
    )
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)
    assert (
        entry["counts"]["sent"] == result.deliverable
        and entry["counts"]["failed"] == result.permanent
    )
    assert entry["uncertain"] == result.reported_uncertain >= result.duplicates
    assert {f["code"] for f in entry["failures"]} == ({550} if result.permanent else set())
    assert all("550 5.1.1" in f["reply"] for f in entry["failures"])
