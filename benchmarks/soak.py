#!/usr/bin/env python3
"""Fault soak at scale: tests/test_soak.py's soak (2,000 recipients in CI) at 100,000 recipients.

    python benchmarks/soak.py                           # 100,000 recipients, 10 SIGKILLs, seed 1
    python benchmarks/soak.py --recipients 20000 --crashes 5 --seed 7
    python benchmarks/soak.py --write-doc               # and put the figures in docs/reliability.md
    python benchmarks/soak.py --json                    # one JSON document instead of the table

A real `dispatch send` process sends to the fault server of tests/helpers/faultserver.py
(aiosmtpd on 127.0.0.1 in a process of its own: 451 at RCPT and after DATA, 421
and close, the message kept then the connection dropped before the reply
(RFC 1047), stalls past the client's --timeout, 550 for a fixed 1% of the list,
454 when more than 200 messages were accepted in half a second). The sender is
SIGKILLed at random moments, --crashes times, and restarted until it exits 0 or
1 with nothing pending. Then the server's own log of what it accepted is held
against the journal: everyone deliverable reached, no duplicate that a crash or
a dropped reply does not explain, every 550 failed with its reply and nobody
else, the journal's sent rows exactly what the server holds.

Everything is written in a temporary folder, removed at the end (unless
--keep); with --write-doc, the figures section of docs/reliability.md (between
its `soak:begin` and `soak:end` markers) is replaced. Bounded: --budget-minutes
(default 15) stops the soak, and says so, if it runs longer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/helpers: the fault server and the soak

from tests.helpers.faultserver import KINDS, FaultPlan  # noqa: E402 (after the path)
from tests.helpers.soak import Soak, SoakResult  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"
FAULT_NAMES = {
    "451-rcpt": "451 at RCPT",
    "451-data": "451 after DATA",
    "421": "421 and close (at RCPT)",
    "drop": "kept, then dropped before the reply (RFC 1047)",
    "stall-rcpt": "stall at RCPT past --timeout",
    "stall-data": "stall after DATA past --timeout",
    "550": "550 (the fixed 1% set; every try)",
    "454": "454 throttling (> 200 accepted in 0.5 s)",
}


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in ("dispatch-mail", "aiosmtplib", "aiosmtpd"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
        "load_at_start": round(os.getloadavg()[0], 2),
    }


def table(result: SoakResult, info: dict, command: str) -> str:
    in_flight = sum(len(c.in_flight) for c in result.crashes)
    rate = result.accepted / result.seconds if result.seconds else 0
    rows = [
        (
            "recipients",
            f"{result.recipients:,} ({result.deliverable:,} deliverable, "
            f"{result.permanent:,} refused with 550)",
        ),
        (
            "duration",
            f"{result.seconds:.0f} s ({rate:.0f} messages accepted/s overall, "
            "crashes and restarts included)",
        ),
        (
            "runs of `dispatch send`",
            f"{result.rounds} ({len(result.crashes)} SIGKILLed, "
            f"exits of the others: {result.exits})",
        ),
        (
            "crashes (SIGKILL)",
            (
                f"{len(result.crashes)}, with {in_flight} message(s) in flight in all "
                f"(at most {max((len(c.in_flight) for c in result.crashes), default=0)} at once; "
                f"concurrency {result.concurrency})"
            ),
        ),
    ]
    rows += [(f"fault: {FAULT_NAMES[k]}", f"{result.faults.get(k, 0):,}") for k in KINDS]
    rows += [
        ("messages the server holds", f"{result.accepted:,} for {result.reached:,} recipients"),
        (
            "duplicates",
            (
                f"{result.duplicates} ({result.duplicates_crash} from crashes, bound "
                f"{result.concurrency * len(result.crashes)}; "
                f"{result.duplicates_drop} from post-DATA drops)"
            ),
        ),
        (
            "flagged as possible duplicates",
            f"{result.reported_uncertain} (journal `uncertain`; every duplicate is among them)",
        ),
        ("journal at the end", ", ".join(f"{k} {v:,}" for k, v in sorted(result.journal.items()))),
        ("lost", f"**{result.lost}**"),
        ("CPU", f"sender {result.sender_cpu:.0f} s, server {result.server_cpu:.0f} s"),
        (
            "checks failed",
            f"{len(result.problems)}"
            + (": " + "; ".join(result.problems[:5]) if result.problems else ""),
        ),
    ]
    lines = ["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)
    lines += [
        "",
        (
            f"Machine: {info['cpu']}, {info['cores']} cores, {info['os']}, "
            f"Python {info['python']}, {packages}; "
            f"load average {info['load_at_start']} at the start."
        ),
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}).",
    ]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{DOC}: no {BEGIN} … {END} section to replace")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crashes", type=int, default=10)
    parser.add_argument(
        "--budget-minutes", type=float, default=15.0, help="stop (and fail) past this"
    )
    parser.add_argument(
        "--write-doc", action="store_true", help=f"replace the figures in {DOC.relative_to(ROOT)}"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (journal, event log, runs' output)",
    )
    options = parser.parse_args()

    # a plain kill must still stop the fault server and the sender
    # (the finally blocks run on SystemExit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    info = machine()
    command = "python benchmarks/soak.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    folder = Path(tempfile.mkdtemp(prefix="dispatch-soak-"))
    try:
        soak = Soak(
            folder,
            recipients=options.recipients,
            concurrency=options.concurrency,
            seed=options.seed,
            crashes=options.crashes,
            plan=FaultPlan(seed=options.seed),
            budget=options.budget_minutes * 60,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
        print(
            f"soak: {options.recipients:,} recipients, {options.crashes} crashes, "
            f"seed {options.seed} "
            f"in {folder}",
            file=sys.stderr,
            flush=True,
        )
        result = soak.run()
    finally:
        if options.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if options.json:
        doc = asdict(result)
        doc.update(machine=info, command=command, summary=result.summary())
        print(json.dumps(doc, indent=2))
    else:
        print(result.summary())
        print()
        print(table(result, info, command))
    if options.write_doc:
        write_doc(table(result, info, command))
        print(f"figures written to {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
