#!/usr/bin/env python3
"""CSS inliners on our real output: css-inline (our settings) against premailer.

Input: the Q1 issue (issues/2026-q1) rendered to MJML by our templates, turned into
HTML by mjml2html, before any inlining; plus the theme's inline.css. Each inliner gets
exactly that. Measured: import time and first call (fresh processes), warm time (median
of 50 calls in this process), output size, and whether what the responsive and dark-mode
layout needs survives. Network: each inliner also runs once in a fresh process inside an
empty network namespace (`unshare -n`) under `strace -e connect`, with a Python audit hook
recording socket use, so an attempted fetch is seen and goes nowhere.

    python benchmarks/inliners.py            # Markdown tables
    python benchmarks/inliners.py --json     # one JSON document

premailer is installed with pip if missing (`pip install premailer`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
# What a theme with a web font gets from MJML (mj-font): a <link> and an @import.
FONT_HEAD = '<mj-font name="Inter" href="https://fonts.googleapis.com/css?family=Inter:400,700" />'


PREMAILER_TUNED = {
    "keep_style_tags": True,
    "strip_important": False,
    "disable_validation": True,
    "allow_network": False,
}


# ------------------------------------------------------------------ the inliners
def _mark_premailer_ignore(html: str) -> str:
    return html.replace("<style", '<style data-premailer="ignore"')


def inliner(name: str):
    """Return ``fn(html, css) -> str`` for one configuration. Imports happen in here."""
    if name == "css-inline (ours)":
        from dispatch_mail.render.inline import inline_css  # imports css_inline on first call

        return inline_css
    if name == "premailer defaults":
        from premailer import Premailer

        return lambda html, css: Premailer(html, css_text=css).transform()
    if name == "premailer tuned":
        from premailer import Premailer

        return lambda html, css: Premailer(html, css_text=css, **PREMAILER_TUNED).transform()
    if name == "premailer tuned + ignore":
        from premailer import Premailer

        return lambda html, css: Premailer(
            _mark_premailer_ignore(html), css_text=css, **PREMAILER_TUNED
        ).transform()
    raise KeyError(name)


CONFIGS = ("css-inline (ours)", "premailer defaults", "premailer tuned", "premailer tuned + ignore")
CONFIG_NOTES = {
    "css-inline (ours)": "dispatch_mail.render.inline.inline_css: extra_css=inline.css, "
    "keep_style_tags, keep_at_rules, load_remote_stylesheets=False, MJML's <style> blocks marked "
    'data-css-inline="ignore"',
    "premailer defaults": "Premailer(html, css_text=inline.css), every other option at its default",
    "premailer tuned": "css_text=inline.css, keep_style_tags=True, strip_important=False, "
    "disable_validation=True, allow_network=False",
    "premailer tuned + ignore": "as tuned, and MJML's <style> blocks marked "
    'data-premailer="ignore" '
    "(premailer's equivalent of what we do with css-inline)",
}
LIBRARY = {"css-inline (ours)": "css_inline"}


def library_module(name: str) -> str:
    return LIBRARY.get(name, "premailer")


# ------------------------------------------------------------------ input
def render_input() -> tuple[str, str, str]:
    """(mjml2html's HTML before inlining, the theme's inline CSS, the same HTML with a web font)."""
    from dispatch_mail.project.loader import load
    from dispatch_mail.render.context import template_context
    from dispatch_mail.render.mjml import mjml_to_html
    from dispatch_mail.render.templates import render

    project, issue = load(ISSUE)
    context = template_context(project, issue, False)
    override = project.root / project.templates
    mjml_source = render("email.mjml.j2", context, override)
    css = render("inline.css.j2", context, override)
    with_font = mjml_source.replace("<mj-head>", "<mj-head>" + FONT_HEAD, 1)
    with_font = with_font.replace('<mj-all font-family="', '<mj-all font-family="Inter, ', 1)
    return mjml_to_html(mjml_source), css, mjml_to_html(with_font)


# ------------------------------------------------------------------ fresh processes
def child(argv: list[str]) -> None:
    """--child NAME HTML CSS OUT [--audit]: import, first call, write the output, print JSON."""
    name, html_path, css_path, out_path = argv[:4]
    audit, block = "--audit" in argv, "--block" in argv
    net: list[str] = []
    if audit:

        def hook(event, args):
            if event in (
                "socket.connect",
                "socket.getaddrinfo",
                "socket.gethostbyname",
                "urllib.Request",
                "http.client.connect",
            ):
                net.append(f"{event} {args[:2]!r}"[:160])
                if block:  # no network namespace to contain it: stop it here
                    raise ConnectionRefusedError("network blocked by the benchmark")

        sys.addaudithook(hook)
    html = Path(html_path).read_text()
    css = Path(css_path).read_text()
    if name == "css-inline (ours)":
        import dispatch_mail.render.inline  # noqa: F401 - our module (and Jinja2 via the package), not timed
    t0 = time.perf_counter()
    __import__(library_module(name))  # the inliner library alone
    t1 = time.perf_counter()
    fn = inliner(name)  # the library is already imported: this costs nothing
    t1 = time.perf_counter()
    error = None
    try:
        out = fn(html, css)
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        out, error = "", f"{type(exc).__name__}: {exc}"[:300]
    t2 = time.perf_counter()
    Path(out_path).write_text(out)
    print(json.dumps({"import": t1 - t0, "first_call": t2 - t1, "net": net, "error": error}))


def fresh(
    name: str, html_file: Path, css_file: Path, out_file: Path, *, network_probe: bool = False
) -> dict:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        str(html_file),
        str(css_file),
        str(out_file),
    ]
    strace_log = None
    if network_probe:
        argv.append("--audit")
        if shutil.which("strace"):
            strace_log = out_file.with_suffix(".strace")
            argv = [
                "strace",
                "-f",
                "-qq",
                "-e",
                "trace=connect,sendto,sendmsg",
                "-o",
                str(strace_log),
                *argv,
            ]
        if (
            shutil.which("unshare")
            and subprocess.run(
                ["unshare", "-n", "true"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            argv = ["unshare", "-n", *argv]
        else:
            argv.append("--block")
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"{name}: child failed: {proc.stderr[-800:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["stderr_lines"] = len([line for line in proc.stderr.splitlines() if line.strip()])
    if network_probe:
        data["sandbox"] = (
            "unshare -n" if argv[0] == "unshare" else "audit hook blocking Python sockets"
        )
        data["syscalls"] = []
        if strace_log and strace_log.exists():
            data["syscalls"] = [
                line.split(" ", 1)[1][:160]
                for line in strace_log.read_text().splitlines()
                if "AF_INET" in line
            ]
            data["strace"] = True
    return data


# ------------------------------------------------------------------ correctness
def style_text(html: str) -> str:
    return "\n".join(re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL | re.IGNORECASE))


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def _norm_selector(sel: str) -> str:
    sel = re.sub(r"\s*([>+~])\s*", r"\1", sel.strip())
    return re.sub(r"\s+", " ", sel).lower()


def css_declarations(css: str) -> set[tuple]:
    """Every (media, selector, property, value, important) of a sheet; media None at top level."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    found: set[tuple] = set()

    def block(text: str, media: str | None) -> None:
        pos = 0
        while True:
            brace = text.find("{", pos)
            if brace < 0:
                return
            depth, end = 1, brace + 1
            while end < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            prelude = text[pos:brace].rsplit(";", 1)[-1].strip()  # drop @import …; statements
            body = text[brace + 1 : end - 1]
            if prelude.lower().startswith("@media"):
                block(body, _norm(prelude[6:]))
            elif not prelude.startswith("@"):
                for selector in prelude.split(","):
                    for decl in body.split(";"):
                        if ":" not in decl:
                            continue
                        prop, value = decl.split(":", 1)
                        important = bool(re.search(r"!\s*important", value, re.IGNORECASE))
                        value = re.sub(r"!\s*important", "", value, flags=re.IGNORECASE)
                        found.add(
                            (
                                media,
                                _norm_selector(selector),
                                prop.strip().lower(),
                                _norm(value),
                                important,
                            )
                        )
            pos = end

    block(css, None)
    return found


CHECKS = {
    "@media (max-width:480px) rules, with !important": lambda d: d[0] and "max-width:480px" in d[0],
    "@media (prefers-color-scheme: dark) rules, with !important": lambda d: (
        d[0] and "prefers-color-scheme:dark" in d[0]
    ),
    "[data-ogsc] / [data-ogsb] rules": lambda d: (
        d[0] is None and d[1].startswith(("[data-ogsc]", "[data-ogsb]"))
    ),
    "MJML mobile column rules (.mj-column-per-*, mj-full-width-mobile)": lambda d: (
        "mj-column-per-" in d[1] or "mj-full-width-mobile" in d[1]
    ),
}


def correctness(source_html: str, css: str, out: str) -> dict:
    source = css_declarations(style_text(source_html))
    kept = css_declarations(style_text(out))
    result: dict[str, object] = {}
    for label, wanted in CHECKS.items():
        needed = [d for d in source if wanted(d)]
        found = sum(d in kept for d in needed)
        # kept, but with its !important stripped (then the inlined value wins over it)
        stripped = sum(d not in kept and d[4] and (*d[:4], False) in kept for d in needed)
        result[label] = [found, len(needed), stripped] if stripped else [found, len(needed)]
    col_class = r'class="[^"]*mj-column-per-\d+'
    result["mj-column-per-* class attributes"] = [
        len(re.findall(col_class, out)),
        len(re.findall(col_class, source_html)),
    ]
    result["Outlook conditional comments <!--[if mso"] = [
        out.count("<!--[if mso"),
        source_html.count("<!--[if mso"),
    ]
    result["theme inline.css applied (element, property) pairs"] = theme_applied(css, out)

    def important_attrs(markup: str) -> int:
        import lxml.html

        return sum(
            bool(re.search(r"!\s*important", e.get("style", "")))
            for e in lxml.html.fromstring(markup).iter()
            if isinstance(e.tag, str)
        )

    result["style attributes that gained !important (should be 0)"] = important_attrs(
        out
    ) - important_attrs(source_html)
    return result


def theme_applied(css: str, out: str) -> list[int]:
    """For every rule of inline.css, every element it selects in the output must carry each of its
    properties in its style attribute (a pre-existing inline value may win, but the property is
    there)."""
    import lxml.html
    from cssselect import GenericTranslator

    tree = lxml.html.fromstring(out)
    have = need = 0
    rules: dict[str, set[str]] = {}
    for media, selector, prop, _value, _important in css_declarations(css):
        if media is None:
            rules.setdefault(selector, set()).add(prop)
    for selector, props in rules.items():
        for element in tree.xpath(GenericTranslator().css_to_xpath(selector)):
            style = element.get("style") or ""
            present = {d.split(":", 1)[0].strip().lower() for d in style.split(";") if ":" in d}
            need += len(props)
            have += len(props & present)
    return [have, need]


def font_checks(source_html: str, out: str) -> dict:
    link = r"<link[^>]*fonts\.googleapis\.com[^>]*>"
    return {
        "font <link> kept": [len(re.findall(link, out)), len(re.findall(link, source_html))],
        "font @import kept": [out.count("@import"), source_html.count("@import")],
    }


# ------------------------------------------------------------------ run
def ensure_premailer(log) -> None:
    try:
        import premailer  # noqa: F401
    except ImportError:
        log("premailer missing: pip install premailer …")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "premailer"], check=True)


def versions() -> dict:
    out = {}
    for name in ("css-inline", "premailer", "cssutils", "lxml", "requests", "mjml-python"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = sys.version.split()[0]
    return out


def run(args) -> dict:
    log = (lambda msg: print(msg, file=sys.stderr)) if not args.quiet else (lambda msg: None)
    ensure_premailer(log)
    os.environ.setdefault(
        "DISPATCH_CACHE_DIR", "off"
    )  # one render: no compiled-template cache needed
    html, css, html_font = render_input()
    result: dict = {
        "versions": versions(),
        "input": {"html_bytes": len(html.encode()), "css_bytes": len(css.encode())},
        "configs": {},
        "notes": CONFIG_NOTES,
    }
    with tempfile.TemporaryDirectory(prefix="dispatch-inliners-") as tmp:
        tmp = Path(tmp)
        (tmp / "in.html").write_text(html)
        (tmp / "in.css").write_text(css)
        (tmp / "font.html").write_text(html_font)
        import cssutils

        default_level = cssutils.log.getEffectiveLevel()
        for name in CONFIGS:
            log(f"{name}: {args.fresh} fresh processes …")
            slug = re.sub(r"\W+", "-", name).strip("-")
            firsts = [
                fresh(name, tmp / "in.html", tmp / "in.css", tmp / f"{slug}.html")
                for _ in range(args.fresh)
            ]
            out = (tmp / f"{slug}.html").read_text()
            probe = fresh(
                name,
                tmp / "in.html",
                tmp / "in.css",
                tmp / f"{slug}.probe.html",
                network_probe=True,
            )
            probe_font = fresh(
                name,
                tmp / "font.html",
                tmp / "in.css",
                tmp / f"{slug}.font.html",
                network_probe=True,
            )
            font_out = (tmp / f"{slug}.font.html").read_text()

            log(f"{name}: warm, {args.warm} calls …")
            fn = inliner(name)
            cssutils.log.setLevel(default_level)  # tuned runs must not quieten the defaults
            if name == "premailer tuned" or name == "premailer tuned + ignore":
                cssutils.log.setLevel("CRITICAL")  # not a premailer option that changes the output
            devnull = os.open(os.devnull, os.O_WRONLY)
            saved = os.dup(2)
            os.dup2(devnull, 2)  # premailer's defaults log cssutils warnings on every call
            try:
                for _ in range(3):
                    fn(html, css)
                warm = []
                for _ in range(args.warm):
                    t0 = time.perf_counter()
                    fn(html, css)
                    warm.append(time.perf_counter() - t0)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)
            result["configs"][name] = {
                "import_ms": statistics.median(f["import"] for f in firsts) * 1000,
                "first_call_ms": statistics.median(f["first_call"] for f in firsts) * 1000,
                "warm_ms": statistics.median(warm) * 1000,
                "warm_p90_ms": statistics.quantiles(warm, n=10, method="inclusive")[-1] * 1000,
                "output_bytes": len(out.encode()),
                "stderr_lines_first_call": firsts[0]["stderr_lines"],
                "error": firsts[0]["error"],
                "checks": correctness(html, css, out),
                "network": {
                    "our_output": {
                        "python": probe["net"],
                        "syscalls": probe["syscalls"],
                        "error": probe["error"],
                        "sandbox": probe["sandbox"],
                    },
                    "with_web_font": {
                        "python": probe_font["net"],
                        "syscalls": probe_font["syscalls"],
                        "error": probe_font["error"],
                        "sandbox": probe_font["sandbox"],
                    },
                },
                "font_checks": font_checks(html_font, font_out),
            }
    result["fresh_runs"] = args.fresh
    result["warm_runs"] = args.warm
    return result


def _cell(value) -> str:
    if isinstance(value, list):
        ok = value[0] == value[1]
        extra = f" ({value[2]} kept without !important)" if len(value) > 2 else ""
        return f"{value[0]}/{value[1]}" + extra + ("" if ok else " **✗**")
    return str(value) + ("" if value == 0 else " **✗**")


def _net_cell(probe: dict) -> str:
    attempts = len(probe["python"]) + len(probe["syscalls"])
    text = "none" if not attempts else f"**{attempts} attempt(s)**"
    if probe["error"]:
        text += f" (raised {probe['error'].split(':')[0]})"
    return text


def markdown(r: dict) -> str:
    names = list(r["configs"])
    v = r["versions"]
    lines = [
        (
            f"Input: Q1 issue, mjml2html output {r['input']['html_bytes'] / 1024:.1f} KB "
            f"+ theme inline.css {r['input']['css_bytes']} B. Python {v['python']}, "
            f"css-inline {v['css-inline']}, premailer {v['premailer']} "
            f"(cssutils {v['cssutils']}, lxml {v['lxml']})."
        ),
        "",
    ]
    lines.append("| | " + " | ".join(names) + " |")
    lines.append("|---|" + "--:|" * len(names))
    c = r["configs"]
    rows = [
        (
            f"import, fresh process (median of {r['fresh_runs']}), ms",
            lambda x: f"{x['import_ms']:.1f}",
        ),
        (
            f"first call, fresh process (median of {r['fresh_runs']}), ms",
            lambda x: f"{x['first_call_ms']:.1f}",
        ),
        (f"warm call (median of {r['warm_runs']}), ms", lambda x: f"{x['warm_ms']:.2f}"),
        ("output size, KB", lambda x: f"{x['output_bytes'] / 1024:.1f}"),
        ("lines on stderr (first call)", lambda x: str(x["stderr_lines_first_call"])),
    ]
    for label, fmt in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(c[n]) for n in names) + " |")
    for check in c[names[0]]["checks"]:
        lines.append(
            f"| {check} | " + " | ".join(_cell(c[n]["checks"][check]) for n in names) + " |"
        )
    lines.append(
        "| network attempts, our output | "
        + " | ".join(_net_cell(c[n]["network"]["our_output"]) for n in names)
        + " |"
    )
    lines.append(
        "| network attempts, same issue with an mj-font web font | "
        + " | ".join(_net_cell(c[n]["network"]["with_web_font"]) for n in names)
        + " |"
    )
    for check in c[names[0]]["font_checks"]:
        lines.append(
            f"| {check} (mj-font variant) | "
            + " | ".join(_cell(c[n]["font_checks"][check]) for n in names)
            + " |"
        )
    lines += [
        "",
        (
            "Checks count CSS declarations (media, selector, property, value, !important) "
            "of the input's `<style>` blocks found unchanged in the output's; "
            "`k/n` = kept of needed. ✗ marks a loss."
        ),
        "",
    ]
    for n in names:
        lines.append(f"- **{n}**: {r['notes'][n]}")
    sandbox = c[names[0]]["network"]["our_output"]["sandbox"]
    lines.append(
        f"- Network probe: a fresh process per inliner in `{sandbox}`, strace of connect/sendto "
        "(AF_INET/AF_INET6) and a Python audit hook on socket/urllib events."
    )
    for n in names:
        for where, probe in c[n]["network"].items():
            if not (probe["python"] or probe["syscalls"]):
                continue
            events = list(
                dict.fromkeys(re.sub(r" object at 0x[0-9a-f]+", "", e) for e in probe["python"])
            )
            detail = "; ".join(f"`{e}`" for e in events[:3]) or "no Python-level event"
            results = sorted(
                {
                    m.group(1)
                    for m in (re.search(r"= -?\d+ ?(\w*)", x) for x in probe["syscalls"])
                    if m
                }
            )
            lines.append(
                f"  - {n}, {where.replace('_', ' ')}: {detail}; {len(probe['syscalls'])} INET "
                f"connect/send syscalls ({', '.join(r for r in results if r) or 'see JSON'})"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warm", type=int, default=50, help="warm calls per inliner (default 50)")
    parser.add_argument(
        "--fresh", type=int, default=7, help="fresh processes for import/first call (default 7)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of Markdown"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
