#!/usr/bin/env python3
"""Relays far away: `dispatch send`, bare aiosmtplib and `smtp-source` through a delaying proxy.

    python benchmarks/relay_latency.py            # 2,000 messages; RTT 0, 20, 50 ms; 16 and 64
    python benchmarks/relay_latency.py --quick    # 400 messages: a smoke run
    python benchmarks/relay_latency.py --rtts 0 50 --connections 16 --messages 1000
    python benchmarks/relay_latency.py --baseline ../dispatch-before   # + that checkout's dispatch

A relay is 10–80 ms away, not on loopback, and a client that waits for each reply
pays a round trip per command: four per message for MAIL, RCPT, DATA and the final
".". With PIPELINING (RFC 2920) dispatch pays two. This measures that in one run:
each sender in its own process, each against a fresh Postfix `smtp-sink` (which
offers PIPELINING, not CHUNKING) behind a proxy that delays each direction by half
the RTT, keeping order. `tc netem` is not available here, so the delay is a proxy:

  dispatch         the real `dispatch send issues/2026-q1 --list X.csv --tls none …`
  bare aiosmtplib  MAIL, RCPT, DATA on reused connections, pre-built bytes
  smtp-source      Postfix `smtp-source -s C -d -F msg`: one command at a time, in C
  dispatch before  with --baseline DIR: `dispatch send` run from another checkout (the
                   code before PIPELINING), to compare the two in the same run

Each figure is the best of --repeats runs (the machine is shared: the best run is
the one least disturbed), with the other load seen during the runs reported.

The proxy runs in its own process. RTT 0 is measured without it (the loopback
figure of benchmarks/send.py); `smtp-source` through the proxy at 0 ms delay shows
what the proxy costs. The helpers (smtp-sink, the child runner, the list and the
message) are benchmarks/send.py's, imported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import send as bench  # noqa: E402  (benchmarks/send.py: its helpers, not copied)

HOST = bench.HOST
SENDERS = {"dispatch": "dispatch", "bare": "bare aiosmtplib", "smtp_source": "smtp-source"}
CHUNK = 256 * 1024


# ------------------------------------------------------------------ the proxy (its own process)
async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Copy one direction, each chunk written ``delay`` seconds after it was read, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            when, data = await queue.get()
            wait = when - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(CHUNK)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()
    finally:
        writer.close()


async def _proxy(listen: int, target: int, delay: float) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pump(reader, up_writer, delay), _pump(up_reader, writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(connection, HOST, listen, backlog=512)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class DelayedSink(bench.Sink):
    """benchmarks/send.py's smtp-sink, seen through the proxy: ``port`` is the proxy's.

    ``one_way`` (seconds) is set before each measurement; None: no proxy at all.
    """

    one_way: float | None = None
    proxy_cpu: float = 0.0  # seconds of CPU the last proxy used

    def __init__(self, exe: str, folder: Path):
        super().__init__(exe, folder)
        self.proxy: subprocess.Popen[str] | None = None

    def __enter__(self) -> DelayedSink:
        super().__enter__()
        if self.one_way is None:
            return self
        listen = bench.free_port()
        self.proxy = subprocess.Popen(
            [sys.executable, __file__, "--proxy", str(listen), str(self.port), str(self.one_way)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proxy.stdout is not None
        if self.proxy.stdout.readline().strip() != "ready":
            self.__exit__()
            raise RuntimeError("the delay proxy did not start")
        self.port = listen
        return self

    def cpu(self) -> float | None:
        """The sink's CPU and the proxy's, so that neither counts as other load."""
        sink = super().cpu() or 0.0
        proxy = bench.proc_cpu_seconds(self.proxy.pid) if self.proxy else None
        return sink + (proxy or 0.0)

    def __exit__(self, *exc: object) -> None:
        if self.proxy is not None and self.proxy.poll() is None:
            DelayedSink.proxy_cpu = bench.proc_cpu_seconds(self.proxy.pid) or 0.0
            self.proxy.terminate()
            try:
                self.proxy.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait(timeout=5)
        super().__exit__(*exc)


# ------------------------------------------------------------------ the matrix
def measure(
    runner: bench.Bench, sender: str, n: int, csv: Path, one_way: float | None, repeats: int
) -> dict:
    """The best of ``repeats`` runs, with the most other load seen in any of them."""
    runs = []
    for _ in range(repeats):
        DelayedSink.one_way, DelayedSink.proxy_cpu = one_way, 0.0
        r = runner.measure(sender, n, csv, getattr(runner, "issue", bench.ISSUE))
        runs.append({**r, "proxy_cpu_s": DelayedSink.proxy_cpu})
    best = max(runs, key=lambda r: r["rate"])
    return {
        "rate": best["rate"],
        "rates": [r["rate"] for r in runs],
        "seconds": best["seconds"],
        "cpu_ms_per_msg": best["cpu_ms_per_msg"],
        "other_load": max(r["other_load"] for r in runs),
        "proxy_cpu_s": best["proxy_cpu_s"],
        "sink_messages": best["sink_messages"],
    }


def run(args: argparse.Namespace) -> dict:
    sink_exe, source_exe, postfix_version = bench.ensure_postfix_tools(not args.no_install)
    bench.Sink = DelayedSink  # type: ignore[misc]  (Bench.measure starts its sink by this name)
    result: dict = {
        "machine": bench.machine_info(),
        "postfix": postfix_version,
        "messages": args.messages,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "rows": [],
        "proxy_check": [],
    }
    with tempfile.TemporaryDirectory(prefix="dispatch-bench-latency-") as tmp_name:
        tmp = Path(tmp_name)
        runner = bench.Bench(argparse.Namespace(concurrency=16), tmp, sink_exe, source_exe)
        runners = {sender: runner for sender in SENDERS}
        if args.baseline:
            before = bench.Bench(runner.args, tmp, sink_exe, source_exe)
            before.env["PYTHONPATH"] = str(Path(args.baseline).resolve())
            before.counter = 1000  # journals of its own
            # its own issue and dispatch.yaml: an older checkout may not read today's settings
            before.issue = Path(args.baseline).resolve() / "issues" / "2026-q1"
            runners["dispatch_before"] = before
        try:
            result["message_bytes"] = bench.write_message(runner.message_file, runner.env)
            csv = tmp / "list.csv"
            bench.write_list(csv, args.messages)
            warm = tmp / "warm.csv"
            bench.write_list(warm, 100)
            for each in runners.values():
                # caches (templates, bytecode) warm
                each.measure("dispatch", 100, warm, getattr(each, "issue", bench.ISSUE))
            for connections in args.connections:
                runner.args.concurrency = connections
                for rtt in args.rtts:
                    one_way = rtt / 2000 if rtt else None
                    row = {"rtt_ms": rtt, "connections": connections}
                    for sender, by in runners.items():
                        bench.log(f"RTT {rtt} ms, {connections} connections: {sender} …")
                        kind = "dispatch" if sender == "dispatch_before" else sender
                        row[sender] = measure(by, kind, args.messages, csv, one_way, args.repeats)
                        bench.log(f"  {row[sender]['rate']:,.0f} msg/s")
                    result["rows"].append(row)
                bench.log(f"smtp-source through the proxy at 0 ms, {connections} connections …")
                check = measure(runner, "smtp_source", args.messages, csv, 0.0, args.repeats)
                result["proxy_check"].append({"connections": connections, **check})
        finally:
            for each in {id(r): r for r in runners.values()}.values():
                each.close()
    result["load_end"] = os.getloadavg()[0]
    return result


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores, {m['os']}, {m['python']}, "
        f"aiosmtplib {m['packages'].get('aiosmtplib')}, Postfix {result['postfix']}; "
        f"{result['messages']:,} messages of {result['message_bytes']:,} bytes per run; "
        f"load average {m['load_start']:.1f} at the start, {result['load_end']:.1f} at the end.",
        f"Command: `python benchmarks/{result['command']}`",
        "",
        "| RTT | connections | dispatch | bare aiosmtplib | smtp-source | dispatch before "
        "| dispatch ÷ bare | dispatch ÷ smtp-source | dispatch ÷ before | other load (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        d, b, s = row["dispatch"], row["bare"], row["smtp_source"]
        before = row.get("dispatch_before")
        load = max(r["other_load"] for k, r in row.items() if isinstance(r, dict))
        lines.append(
            f"| {row['rtt_ms']} ms | {row['connections']} | {d['rate']:,.0f} msg/s "
            f"| {b['rate']:,.0f} | {s['rate']:,.0f} "
            f"| {before['rate'] if before else float('nan'):,.0f} "
            f"| {d['rate'] / b['rate']:.2f}× | {d['rate'] / s['rate']:.2f}× "
            f"| {d['rate'] / before['rate'] if before else float('nan'):.2f}× "
            f"| up to {load:.1f} |"
        )
    lines.append("")
    direct = {r["connections"]: r["smtp_source"]["rate"] for r in result["rows"] if not r["rtt_ms"]}
    for check in result["proxy_check"]:
        c = check["connections"]
        versus = f" against {direct[c]:,.0f} direct" if c in direct else ""
        lines.append(
            f"- The proxy itself, 0 ms delay, {c} connections: smtp-source "
            f"{check['rate']:,.0f} msg/s{versus}; the proxy used {check['proxy_cpu_s']:.1f} s CPU."
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--proxy":
        asyncio.run(_proxy(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rtts", type=int, nargs="+", default=[0, 20, 50], metavar="MS")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=1, help="runs per figure; the best")
    parser.add_argument("--baseline", metavar="DIR", help="also run dispatch from this checkout")
    parser.add_argument("--quick", action="store_true", help="400 messages")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("--no-install", action="store_true", help="never apt-get postfix")
    args = parser.parse_args()
    if args.quick:
        args.messages = 400
    started = time.monotonic()
    result = run(args)
    result["wall_s"] = time.monotonic() - started
    print(json.dumps(result, indent=2) if args.json else markdown(result))


if __name__ == "__main__":
    main()
