"""Two `dispatch` installs building the same issue, interleaved in one run: is the newer one slower?

Wall times on a shared machine drift by tens of percent between runs; interleaving the two
commands (and the interpreter's own start-up as the peer) in the same rounds makes the ratio
the figure to read, not the milliseconds.

    python3 -m venv /tmp/before && /tmp/before/bin/pip install -e <checkout of the old commit>
    python benchmarks/compare_build.py --before /tmp/before/bin/dispatch --after .venv/bin/dispatch
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the older install's dispatch executable")
    parser.add_argument("--after", required=True, help="the newer install's dispatch executable")
    parser.add_argument(
        "--issue", default="issues/2026-q1", help="issue folder (default %(default)s)"
    )
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds (default 25)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dispatch-compare-") as folder:
        env = dict(os.environ, DISPATCH_CACHE_DIR=str(Path(folder) / "cache"))
        commands = {
            "python -c pass (peer)": [sys.executable, "-c", "pass"],
            "before: dispatch build": [
                options.before,
                "build",
                options.issue,
                "--out",
                f"{folder}/before",
            ],
            "after: dispatch build": [
                options.after,
                "build",
                options.issue,
                "--out",
                f"{folder}/after",
            ],
        }
        for command in commands.values():  # warm: .pyc and compiled-template caches
            subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(options.rounds):
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
                times[name].append(time.perf_counter() - start)
    print(
        f"{options.rounds} interleaved rounds, load average {os.getloadavg()[0]:.2f} at the end\n"
    )
    print("| command | wall median ms | min ms |")
    print("|---|--:|--:|")
    for name, samples in times.items():
        print(f"| {name} | {statistics.median(samples) * 1000:.1f} | {min(samples) * 1000:.1f} |")
    before = statistics.median(times["before: dispatch build"])
    after = statistics.median(times["after: dispatch build"])
    print(f"\nafter / before (medians): {after / before:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
