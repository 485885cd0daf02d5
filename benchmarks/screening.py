#!/usr/bin/env python3
"""What asking the suppression store costs a send: before it starts and before each batch.

    python benchmarks/screening.py                 # 5,000 recipients, 3 rounds, SQLite + PostgreSQL
    python benchmarks/screening.py --recipients 20000 --rounds 5
    python benchmarks/screening.py --no-postgres   # SQLite only

The same engine, in process, through the campaign APIs (prepare → open_send → run_send),
sends the Q1 issue to the same generated list against a fresh Postfix `smtp-sink` on
127.0.0.1, three ways, interleaved round by round so the machine's drift hits all alike:

  peer      no store: the send as the first release made it (the list's suppression file only)
  sqlite    the project's SQLite store, holding --suppressed other addresses and 1% of the list
  postgres  the same store in a throwaway PostgreSQL cluster on loopback (initdb, like the tests)

Reported: messages/s of each and its ratio to the peer of the same round, the store's
time at the start (reading every suppression of the list) and per batch of 200, and how
many recipients were withdrawn (none should be sent; the sink's own counter checks it).
The unsubscribe token (AES-SIV, mail/tokens.py) is timed against an HMAC-SHA256 of the same
payload, the first release's token, in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import hmac
import platform
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import send as send_bench  # noqa: E402  (benchmarks/send.py: smtp-sink, lists, machine)

from dispatch_mail.delivery import campaign  # noqa: E402
from dispatch_mail.delivery.engine import SendOptions  # noqa: E402
from dispatch_mail.delivery.smtp import SmtpSettings  # noqa: E402
from dispatch_mail.project.loader import load  # noqa: E402
from dispatch_mail.suppression import Suppression, open_store  # noqa: E402
from dispatch_mail.suppression.base import SuppressionStore  # noqa: E402


def fill(store: SuppressionStore, others: int, listed: list[str]) -> None:
    now = time.time()
    for i in range(others):
        store.add(Suppression(f"gone{i}@example.net", "*", "hard-bounce", "bounce", now))
    for email in listed:
        store.add(Suppression(email, "list", "unsubscribed", "one-click", now))


class Timed:
    """Wraps a store's suppressed(): how long the start's read and each batch's look-up take."""

    def __init__(self, store: SuppressionStore):
        self.store, self.start, self.batches = store, 0.0, []

    def install(self) -> None:
        original = self.store.suppressed

        def suppressed(list_name, emails=None):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return original(list_name, emails)
            finally:
                if emails is None:
                    self.start += time.perf_counter() - t
                else:
                    self.batches.append(time.perf_counter() - t)

        self.store.suppressed = suppressed  # type: ignore[method-assign]


def one_send(issue: Path, csv_path: Path, folder: Path, sink_exe: str, url: str | None) -> dict:
    prepared = campaign.prepare(issue)
    store = open_store(prepared.project, url=url) if url != "none" else None
    timed = Timed(store) if store else None
    if timed:
        timed.install()
    with send_bench.Sink(sink_exe, folder) as sink:
        journal, plan = campaign.open_send(
            prepared, str(csv_path), journal_path=folder / f"{time.time_ns()}.journal", store=store
        )
        settings = SmtpSettings(host="127.0.0.1", port=sink.port, tls="none")
        options = SendOptions(concurrency=8)
        summary = asyncio.run(campaign.run_send(journal, prepared, settings, options, None, store))
        journal.close()
        time.sleep(1.2)  # smtp-sink prints its counter every second
        received = sink.messages()
    if store:
        store.close()
    return {
        "rate": summary.sent / summary.duration,
        "sent": summary.sent,
        "received": received,
        "excluded": plan.excluded_total,
        "start_s": timed.start if timed else 0.0,
        "batch_ms": statistics.median(timed.batches) * 1000 if timed and timed.batches else 0.0,
        "batches": len(timed.batches) if timed else 0,
    }


def token_costs(issue: Path) -> dict:
    from dispatch_mail.mail.tokens import TokenKeys

    keys = TokenKeys.from_secrets(b"0123456789abcdef0123456789abcdef!")
    secret = keys.secret
    email = "firstname.lastname@example.com"
    n = 20000
    def best(fn) -> float:  # type: ignore[no-untyped-def]
        return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6

    sealed = best(lambda: keys.seal("subscribers", "2026-q1", email))
    payload = f"subscribers\n{email}".encode()
    mac = best(lambda: hmac.new(secret, payload, hashlib.sha256).digest())
    token = keys.seal("subscribers", "2026-q1", email)
    opened = best(lambda: keys.open(token, lifetime_days=400))
    return {"seal_us": sealed, "hmac_us": mac, "open_us": opened, "length": len(token)}


def main() -> None:
    import os
    import secrets

    os.environ.setdefault("DISPATCH_UNSUBSCRIBE_SECRET", secrets.token_hex(32))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--suppressed", type=int, default=2000, help="other addresses in the store")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    sink_exe, _, _ = send_bench.ensure_postfix_tools(allow_install=True)
    results: dict[str, list[dict]] = {"peer": [], "sqlite": [], "postgres": []}
    with tempfile.TemporaryDirectory(prefix="dispatch-screening-") as tmp:
        folder = Path(tmp)
        project = folder / "news"
        import shutil

        shutil.copytree(ROOT / "issues", project / "issues")
        shutil.copy(ROOT / "dispatch.yaml", project / "dispatch.yaml")
        if (ROOT / "templates").is_dir():
            shutil.copytree(ROOT / "templates", project / "templates")
        csv_path = folder / "list.csv"
        send_bench.write_list(csv_path, args.recipients)
        with csv_path.open(encoding="utf-8") as f:
            emails = [row["email"] for row in csv.DictReader(f)]
        listed = emails[:: 100]  # 1% of the list unsubscribed
        issue = project / "issues" / "2026-q1"
        settings, _ = load(issue)
        with open_store(settings) as store:
            fill(store, args.suppressed, listed)
        urls = {"peer": "none", "sqlite": None}
        cluster = None
        if not args.no_postgres:
            sys.path.insert(0, str(ROOT))
            from tests.helpers.postgres import find_initdb, start_cluster, stop_cluster

            if find_initdb() is not None:
                cluster = start_cluster()
                cluster.admin("CREATE DATABASE bench OWNER dispatch")
                urls["postgres"] = cluster.url("bench")
                with open_store(settings, url=urls["postgres"]) as store:
                    fill(store, args.suppressed, listed)
        try:
            for r in range(args.rounds):
                for name, url in urls.items():
                    outcome = one_send(issue, csv_path, folder, sink_exe, url)
                    results[name].append(outcome)
                    send_bench.log(f"round {r + 1} {name}: {outcome['rate']:.0f}/s")
        finally:
            if cluster is not None:
                stop_cluster(cluster)
    tokens = token_costs(issue)
    machine = send_bench.machine_info()
    print(f"## Suppression store screening ({args.recipients:,} recipients, "
          f"{args.rounds} rounds, concurrency 8)\n")
    print(f"Machine: {machine['cpu']}, {machine['cores']} cores, {platform.python_version()}; "
          f"command: `python benchmarks/screening.py --recipients {args.recipients} "
          f"--rounds {args.rounds}`\n")
    print("| send | msg/s (median) | ratio to peer | start read | per batch of 200 | "
          "withdrawn or excluded | sink received |")
    print("|---|---|---|---|---|---|---|")
    peer = [o["rate"] for o in results["peer"]]
    for name, outcomes in results.items():
        if not outcomes:
            continue
        ratios = [o["rate"] / p for o, p in zip(outcomes, peer, strict=True)]
        print(
            f"| {name} | {statistics.median(o['rate'] for o in outcomes):,.0f} | "
            f"{statistics.median(ratios):.3f} | "
            f"{statistics.median(o['start_s'] for o in outcomes) * 1000:.1f} ms | "
            f"{statistics.median(o['batch_ms'] for o in outcomes):.2f} ms | "
            f"{outcomes[0]['excluded']:,} | "
            f"{outcomes[-1]['received']:,} of {outcomes[-1]['sent']:,} sent |"
        )
    print(
        f"\nUnsubscribe token: AES-SIV seal {tokens['seal_us']:.1f} µs, "
        f"open {tokens['open_us']:.1f} µs, vs HMAC-SHA256 (the first release's token) "
        f"{tokens['hmac_us']:.1f} µs ({tokens['seal_us'] / tokens['hmac_us']:.1f}×); "
        f"token length {tokens['length']} characters."
    )


if __name__ == "__main__":
    main()
