#!/usr/bin/env python3
"""Build benchmark: the Q1 issue in process (by stage), as a `dispatch build` process,
and the same email.mjml through the official MJML CLI, all in one run.

    python benchmarks/build.py                 # Markdown tables
    python benchmarks/build.py --runs 50       # more in-process runs (default 30)
    python benchmarks/build.py --json          # one JSON document instead

The MJML CLI (npm package `mjml`) is installed with `npm install --prefix DIR mjml`
into DIR (default: <tmp>/dispatch-bench-mjml) unless it is already there; that is the
only network use. `--no-mjml-cli` skips it. Nothing is written inside the repository:
outputs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUE = ROOT / "issues" / "2026-q1"
STAGES = ("load", "templates", "mjml", "inline", "plaintext", "eml", "write")
STAGE_NAMES = {
    "load": "load and validate (YAML → model)",
    "templates": "templates (Jinja2 → MJML, inline.css)",
    "mjml": "MJML → HTML (mjml-python)",
    "inline": "inline CSS + minify (css-inline)",
    "plaintext": "plaintext (Jinja2)",
    "eml": ".eml (stdlib email, QP)",
    "write": "write 4 files (atomic, fsync)",
    "other": "other (context, warnings, result)",
}
PACKAGES = (
    "dispatch-mail",
    "Jinja2",
    "MarkupSafe",
    "mjml-python",
    "css-inline",
    "PyYAML",
    "click",
    "aiosmtplib",
)
TARGET_IN_PROCESS_MS = 20.0
TARGET_PROCESS_S = 0.3
TARGET_RATIO = 2.0


# ------------------------------------------------------------------ statistics
def summary(values: list[float]) -> dict[str, float]:
    """median, p10, p90 (inclusive quantiles), min, n; the unit is the caller's."""
    values = sorted(values)
    if len(values) >= 2:
        deciles = statistics.quantiles(values, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[-1]
    else:
        p10 = p90 = values[0]
    return {
        "median": statistics.median(values),
        "p10": p10,
        "p90": p90,
        "min": values[0],
        "n": len(values),
    }


def ms(seconds: float) -> float:
    return seconds * 1000.0


# ------------------------------------------------------------------ machine
def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def git_state() -> str | None:
    """The commit measured, and whether the package had uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "dispatch_mail"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (" + uncommitted changes in dispatch_mail/" if dirty else "")


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "load_start": load_average(),
        "git": git_state(),
        "packages": versions,
    }


# ------------------------------------------------------------------ (a) in process
def in_process(runs: int, cache_dir: Path) -> dict:
    os.environ["DISPATCH_CACHE_DIR"] = str(cache_dir)  # not the user's ~/.cache
    from dispatch_mail.publish.build import build_issue

    def one(write: bool, out: Path | None) -> dict[str, float]:
        t0 = time.perf_counter()
        result = build_issue(ISSUE, out, write=write)
        total = time.perf_counter() - t0
        timings = {k: ms(v) for k, v in result.timings.items()}
        timings["other"] = ms(total) - sum(timings.values())
        timings["total"] = ms(total)
        return timings

    with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
        one(
            False, None
        )  # warm-up: compiles the templates; the cold cost is measured in fresh processes
        no_write = [one(False, None) for _ in range(runs)]
        with_write = [one(True, Path(tmp)) for _ in range(runs)]

    def by_stage(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
        keys = [k for k in (*STAGES, "other", "total") if k in samples[0]]
        return {k: summary([s[k] for s in samples]) for k in keys}

    return {"runs": runs, "write_false": by_stage(no_write), "write_true": by_stage(with_write)}


_CHILD_COLD = r"""
import json, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from dispatch_mail.publish.build import build_issue
t1 = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    r = build_issue(Path(sys.argv[1]), Path(tmp), write=True)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "build": t2 - t1, **{k: v for k, v in r.timings.items()}}))
"""


def cold_first_build(runs: int, env: dict[str, str]) -> dict:
    """Import of the build module and the first build_issue(write=True), each in a fresh process."""
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD_COLD, str(ISSUE)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        sample = {k: ms(v) for k, v in json.loads(out.stdout).items()}
        sample["other"] = sample["build"] - sum(sample.get(k, 0.0) for k in STAGES)
        samples.append(sample)
    return {k: summary([s[k] for s in samples]) for k in samples[0]}


# ------------------------------------------------------------------ (b) processes
def console_scripts() -> list[tuple[str, Path]]:
    """The console script installed beside this interpreter, then the first other `dispatch` on
    PATH (e.g. a pyenv shim, which is what typing `dispatch` runs in a pyenv shell)."""
    found: list[tuple[str, Path]] = []
    beside = Path(sys.executable).parent / "dispatch"
    if beside.is_file():
        found.append(("dispatch build (console script)", beside))
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / "dispatch"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        if any(candidate.resolve() == path.resolve() for _, path in found):
            continue
        if not found:
            found.append(("dispatch build (console script)", candidate))
            continue
        kind = "pyenv shim" if "shims" in candidate.parts else str(candidate)
        found.append((f"dispatch build via PATH ({kind})", candidate))
        break
    if not found:
        sys.exit("no `dispatch` console script found: pip install -e . first")
    return found


def bytecode_env(pycache: Path, template_cache: Path | str) -> dict[str, str]:
    """The environment of every measured process.

    ``pycache``: .pyc files are written and read there (PYTHONPYCACHEPREFIX), as after a normal
    pip install, whatever PYTHONDONTWRITEBYTECODE says and whether or not the repository has
    __pycache__ folders; the repository is not touched. ``template_cache``: the package's
    compiled-template cache (DISPATCH_CACHE_DIR), a temporary folder or "off"; the user's own
    ~/.cache is never used.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["DISPATCH_CACHE_DIR"] = str(template_cache)
    return env


def time_process(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def import_costs(out_dir: Path, env: dict[str, str], repeats: int = 5, top: int = 12) -> dict:
    """`python -X importtime` of the real `dispatch build`: per-module median of `repeats` runs."""
    code = (
        "import sys; from dispatch_mail.cli import main; "
        f"sys.argv = ['dispatch', 'build', {str(ISSUE)!r}, '--out', {str(out_dir)!r}]; main()"
    )
    self_us: dict[str, list[int]] = {}
    cumulative_us: dict[str, list[int]] = {}
    top_level: set[str] = set()
    line_re = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-500:])
        for line in proc.stderr.splitlines():
            m = line_re.match(line)
            if not m:
                continue
            name = m.group(4)
            self_us.setdefault(name, []).append(int(m.group(1)))
            cumulative_us.setdefault(name, []).append(int(m.group(2)))
            if len(m.group(3)) == 1:  # one space: imported at top level, not by another module
                top_level.add(name)
    med_self = {k: statistics.median(v) / 1000 for k, v in self_us.items()}
    med_cum = {k: statistics.median(v) / 1000 for k, v in cumulative_us.items()}
    total = sum(med_cum[k] for k in top_level)
    return {
        "repeats": repeats,
        "total_ms": total,
        "top_level_cumulative_ms": sorted(
            ((k, med_cum[k]) for k in top_level), key=lambda kv: -kv[1]
        )[:top],
        "top_self_ms": sorted(med_self.items(), key=lambda kv: -kv[1])[:top],
    }


# ------------------------------------------------------------------ (c) MJML CLI
def ensure_mjml_cli(prefix: Path, log) -> Path | None:
    cli = prefix / "node_modules" / "mjml" / "bin" / "mjml"
    if cli.is_file():
        return cli
    if not shutil.which("npm") or not shutil.which("node"):
        log("node/npm not found: MJML CLI skipped")
        return None
    log(f"installing the mjml npm package into {prefix} …")
    prefix.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(prefix),
            "mjml",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not cli.is_file():
        log(f"npm install mjml failed: {proc.stderr[-500:]}")
        return None
    return cli


def mjml_version(cli: Path) -> str | None:
    try:
        return json.loads((cli.parent.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def node_version() -> str | None:
    try:
        return (
            subprocess.run(
                ["node", "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            or None
        )
    except OSError:
        return None


# ------------------------------------------------------------------ run and report
def run(args) -> dict:
    log = (lambda msg: print(msg, file=sys.stderr)) if not args.quiet else (lambda msg: None)
    result: dict = {"machine": machine_info(), "issue": str(ISSUE.relative_to(ROOT))}

    log(f"(a) in process: {args.runs} runs × (write=False, write=True) …")
    with tempfile.TemporaryDirectory(prefix="dispatch-bench-cache-") as cache_dir:
        result["in_process"] = in_process(args.runs, Path(cache_dir))

    with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
        tmp = Path(tmp)
        out = tmp / "out"
        env = bytecode_env(tmp / "pycache", tmp / "dispatch-cache")
        scripts = console_scripts()
        # warm-up: fills the bytecode cache and the file cache
        time_process([str(scripts[0][1]), "build", str(ISSUE), "--out", str(out)], ROOT, env)
        log(f"    cold first build: {args.process_runs} fresh processes …")
        result["cold_first_build"] = cold_first_build(args.process_runs, env)

        cli = None if args.no_mjml_cli else ensure_mjml_cli(Path(args.mjml_dir), log)
        commands: list[tuple[str, list[str], dict[str, str]]] = [
            ("python -c pass (interpreter start-up)", [sys.executable, "-c", "pass"], env)
        ]
        commands += [
            (label, [str(path), "build", str(ISSUE), "--out", str(out)], env)
            for label, path in scripts
        ]
        build_argv = [str(scripts[0][1]), "build", str(ISSUE), "--out", str(out)]
        commands.append(
            (
                scripts[0][0] + ", no template cache (DISPATCH_CACHE_DIR=off)",
                build_argv,
                bytecode_env(tmp / "pycache", "off"),
            )
        )
        mjml_src = out / "email.mjml"  # the very file `dispatch build` just wrote
        if cli:
            commands.append(
                (
                    "MJML CLI (node … mjml email.mjml -o out.html)",
                    ["node", str(cli), str(mjml_src), "-o", str(tmp / "mjml-cli.html")],
                    env,
                )
            )
        for _, argv, cenv in commands:
            time_process(argv, ROOT, cenv)
        log(f"(b)/(c) processes: {args.process_runs} runs each, interleaved …")
        samples: dict[str, list[float]] = {label: [] for label, _, _ in commands}
        cpu: dict[str, list[float]] = {label: [] for label, _, _ in commands}
        for _ in range(args.process_runs):  # interleaved, so that drift hits every command alike
            for label, argv, cenv in commands:
                wall, used = time_process(argv, ROOT, cenv)
                samples[label].append(ms(wall))
                cpu[label].append(ms(used))
        result["processes"] = {
            label: {**summary(v), "cpu_median": statistics.median(cpu[label])}
            for label, v in samples.items()
        }
        result["process_runs"] = args.process_runs
        result["mjml_cli"] = (
            {
                "version": mjml_version(cli),
                "node": node_version(),
                "input_bytes": mjml_src.stat().st_size,
                "output_bytes": (tmp / "mjml-cli.html").stat().st_size,
            }
            if cli
            else None
        )
        result["dispatch_output_bytes"] = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
        log("    python -X importtime of `dispatch build` …")
        result["imports"] = import_costs(out, env)

    # targets
    main_label = commands[1][0]
    dispatch_ms = result["processes"][main_label]["median"]
    in_ms = result["in_process"]["write_false"]["total"]["median"]
    targets = {
        "in_process_ms": {
            "value": in_ms,
            "target": f"≤ {TARGET_IN_PROCESS_MS:g} ms",
            "met": in_ms <= TARGET_IN_PROCESS_MS,
        },
        "process_s": {
            "value": dispatch_ms / 1000,
            "target": f"≤ {TARGET_PROCESS_S:g} s",
            "met": dispatch_ms / 1000 <= TARGET_PROCESS_S,
        },
    }
    ratios = {}
    if cli:
        mjml_ms = result["processes"][commands[-1][0]]["median"]
        for label, _, _ in commands[1:-1]:
            ratios[label] = mjml_ms / result["processes"][label]["median"]
        ratio = ratios[main_label]
        targets["mjml_cli_ratio"] = {
            "value": ratio,
            "target": f"≥ {TARGET_RATIO:g}×",
            "met": ratio >= TARGET_RATIO,
        }
    result["ratios_mjml_cli_over"] = ratios
    result["targets"] = targets
    result["main_process"] = main_label
    result["load_end"] = load_average()
    return result


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = ["## Machine", ""]
    lines.append(
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), "
        f"{m['memory']} RAM, {m['os']}"
    )
    lines.append(f"- Python: {m['python']} ({m['python_executable']})")
    loads = [f"{x:.2f}" if x is not None else "?" for x in (m["load_start"], r["load_end"])]
    lines.append(
        f"- Load average (1 min) at start / end: {loads[0]} / {loads[1]} "
        "(other work on the machine inflates wall times)"
    )
    lines.append(f"- Code measured: {m['git']}")
    lines.append("- Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v))
    if r["mjml_cli"]:
        lines.append(f"- MJML CLI: mjml {r['mjml_cli']['version']} on Node {r['mjml_cli']['node']}")
    lines += [
        "",
        f"## (a) In process: `build_issue(issues/2026-q1)`, {r['in_process']['runs']} runs "
        "after one warm-up",
        "",
    ]
    wf, wt, cold = (
        r["in_process"]["write_false"],
        r["in_process"]["write_true"],
        r["cold_first_build"],
    )
    lines.append(
        "| stage | write=False median ms | p10 | p90 | write=True median ms | p10 | p90 "
        "| first build, fresh process, caches warm: median ms |"
    )
    lines.append("|---|--:|--:|--:|--:|--:|--:|--:|")
    for key in (*STAGES, "other", "total"):
        a = wf.get(key)
        b = wt.get(key)
        c = cold.get(key)
        cells = [
            f"{a['median']:.2f} | {a['p10']:.2f} | {a['p90']:.2f}" if a else "– | – | –",
            f"{b['median']:.2f} | {b['p10']:.2f} | {b['p90']:.2f}" if b else "– | – | –",
            f"{c['median']:.1f}"
            if c
            else ("" if key != "total" else f"{cold['build']['median']:.1f}"),
        ]
        name = STAGE_NAMES.get(key, key)
        if key == "total":
            name = "**total**"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| import dispatch_mail.publish.build (fresh process) | | | | | | "
        f"| {cold['import']['median']:.1f} |"
    )
    lines += [
        "",
        (
            "`other` is the call's wall time minus the sum of the stages. The last column is one "
            f"`build_issue(write=True)` in each of {r['process_runs']} fresh processes "
            "(.pyc and compiled-template caches filled by an earlier run): what the CLI pays."
        ),
        "",
    ]

    lines += [f"## (b), (c) Whole processes, {r['process_runs']} runs each, interleaved", ""]
    lines.append("| command | wall median ms | p10 | p90 | min | CPU (user+sys) median ms |")
    lines.append("|---|--:|--:|--:|--:|--:|")
    for label, s in r["processes"].items():
        lines.append(
            f"| {label} | {s['median']:.1f} | {s['p10']:.1f} | {s['p90']:.1f} | {s['min']:.1f} "
            f"| {s['cpu_median']:.1f} |"
        )
    lines.append("")
    if r["ratios_mjml_cli_over"]:
        for label, ratio in r["ratios_mjml_cli_over"].items():
            lines.append(f"- MJML CLI / {label}: **{ratio:.2f}×**")
        lines.append("")

    lines += ["## Targets", "", "| target | measured | goal | met |", "|---|--:|---|---|"]
    names = {
        "in_process_ms": "in-process build (warm, write=False, median)",
        "process_s": f"{r['main_process']} (median)",
        "mjml_cli_ratio": "MJML CLI time / dispatch build time",
    }
    units = {"in_process_ms": "{:.1f} ms", "process_s": "{:.3f} s", "mjml_cli_ratio": "{:.2f}×"}
    for key, t in r["targets"].items():
        lines.append(
            f"| {names[key]} | {units[key].format(t['value'])} | {t['target']} "
            f"| {'yes' if t['met'] else '**no**'} |"
        )

    imp = r["imports"]
    lines += [
        "",
        (
            f"## `python -X importtime` of `dispatch build` (median of {imp['repeats']} runs; "
            f"all imports, site included, {imp['total_ms']:.1f} ms)"
        ),
        "",
    ]
    lines.append("| top-level import | cumulative ms | | module | self ms |")
    lines.append("|---|--:|---|---|--:|")
    for (a, av), (b, bv) in zip(imp["top_level_cumulative_ms"], imp["top_self_ms"], strict=False):
        lines.append(f"| {a} | {av:.1f} | | {b} | {bv:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=30, help="in-process runs per series (default 30)"
    )
    parser.add_argument(
        "--process-runs", type=int, default=15, help="runs per process command (default 15)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of Markdown"
    )
    parser.add_argument(
        "--mjml-dir",
        default=str(Path(tempfile.gettempdir()) / "dispatch-bench-mjml"),
        help="npm prefix holding (or to receive) the mjml package",
    )
    parser.add_argument("--no-mjml-cli", action="store_true", help="skip the MJML CLI comparison")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.process_runs < 1:
        parser.error("--runs and --process-runs must be at least 1")
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
