#!/usr/bin/env python3
"""Send benchmark: `dispatch send` of the Q1 issue to generated lists, against Postfix's
`smtp-sink` on 127.0.0.1, next to bare aiosmtplib and Postfix's `smtp-source`, in one run.

    python benchmarks/send.py                   # 10,000 and 100,000 recipients (7–9 min on 2 cores)
    python benchmarks/send.py --quick           # 2,000 recipients, one round: a smoke run
    python benchmarks/send.py --sizes 10000 --repeats 5
    python benchmarks/send.py --json            # one JSON document instead of Markdown
    python benchmarks/send.py --dkim --quick    # DKIM: signing cost, signed vs unsigned send

What is measured, every run with the same concurrency (16 by default), each in its own
process, each against a fresh `smtp-sink -u nobody -c 127.0.0.1:PORT 1000` whose counter
must show every message:

  (a) dispatch send        the real command (`dispatch send issues/2026-q1 --list X.csv …`):
                           personalized, journaled; its own "in Ns (R/s)" line is the send
                           rate, and wall/CPU/peak RSS come from wait4() on the process.
      engine, journaled    the same engine in process through the campaign APIs
                           (prepare → open_send → run_send), with the time spent in the
                           journal's two writes per message (mark_sending, mark_sent) summed.
  (b) journal isolated     - dispatch send with the journal on tmpfs (/dev/shm) vs on disk;
                           - the engine with those two writes skipped (rows are still read
                             from the journal): "the journal costs X%" = 1 − journaled/skipped.
  (c) bare aiosmtplib      one message's pre-built bytes (~80 KB), 16 connections, each reusing
                           its connection: MAIL, RCPT, DATA as the engine does them. The ceiling
                           for our client library.
  (d) smtp-source          Postfix `smtp-source -s 16 -d -m N -F FILE` with the same message:
                           the machine's SMTP path without Python.
  (e) peak memory          ru_maxrss of the dispatch send process (largest size).
  (f) proposed fix         engine and bare client with aiosmtplib's DATA pre-processing
                           (two re.sub over the whole message) replaced by one bytes.replace
                           dot-stuffing and a direct write: what the fix in the report buys;
                           and the engine without that per-message dot-stuffing pass, as when
                           render() stuffs its static pieces once.

Then a per-message CPU breakdown (timeit of render, aiosmtplib's re.sub pass, a journal's
two commits), and a sampling profile (py-spy if installed, else cProfile) of one dispatch
send. The machine is shared on some hosts: CPU used by other processes during each
measurement is recorded ("other load", in cores) and CPU per message is reported next to
rates, because CPU per message does not depend on what else runs.

Postfix's tools: found on PATH or in /usr/sbin, else installed (as root) with
`apt-get install postfix` and debconf "No configuration"; a Postfix daemon that the install
started is stopped. Everything listens and connects on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ISSUE = ROOT / "issues" / "2026-q1"
HOST = "127.0.0.1"
SENDER = "newsletter@dpdk.org"
SECRET = "benchmark-only-secret-0123456789"
PACKAGES = ("dispatch-mail", "aiosmtplib")
TARGET_RATE = 1000.0
TARGET_BARE_RATIO = 0.90
TARGET_PEAK_MB = 200.0
TARGET_JOURNAL_SHARE = 0.10

VARIANTS = {
    # key: (label, kind)
    "dispatch": ("(a) `dispatch send` process, journal on disk", "process"),
    "dispatch_tmpfs": ("(b) `dispatch send` process, journal on tmpfs", "process"),
    "engine": ("(a) engine in process (campaign APIs), journaled", "engine"),
    "engine_nojournal": ("(b) engine, journal writes skipped", "engine"),
    "engine_fix": ("(f) engine, aiosmtplib DATA pre-processing replaced (proposed fix)", "engine"),
    "engine_fix_prestuffed": (
        "(f) same, and no per-message dot-stuffing pass (render() stuffing once)",
        "engine",
    ),
    "bare": ("(c) bare aiosmtplib, pre-built bytes", "bare"),
    "bare_fix": ("(f) bare aiosmtplib, DATA written directly (proposed fix)", "bare"),
    "smtp_source": ("(d) Postfix smtp-source -s C -d -F msg", "source"),
}
FULL_MATRIX = tuple(VARIANTS)
LARGE_MATRIX = ("dispatch", "bare", "smtp_source")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ machine
def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def proc_cpu_seconds(pid: int) -> float | None:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def fs_type(path: Path) -> str:
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
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
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
        "load_start": os.getloadavg()[0],
    }


# ------------------------------------------------------------------ Postfix tools
def postfix_running() -> bool:
    if not shutil.which("postfix") and not Path("/usr/sbin/postfix").exists():
        return False
    exe = shutil.which("postfix") or "/usr/sbin/postfix"
    try:
        return (
            subprocess.run([exe, "status"], check=False, capture_output=True, timeout=20).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )


def ensure_postfix_tools(allow_install: bool) -> tuple[str, str, str]:
    """(smtp-sink, smtp-source, version); installs Debian's postfix (no configuration) if needed."""
    sink, source = find_tool("smtp-sink"), find_tool("smtp-source")
    if not (sink and source):
        if not allow_install:
            sys.exit(
                "smtp-sink/smtp-source not found (Debian package postfix); "
                "run without --no-install as root"
            )
        if os.geteuid() != 0:
            sys.exit(
                "smtp-sink/smtp-source not found and not root: "
                "apt-get install postfix (No configuration) first"
            )
        log("installing Debian's postfix for smtp-sink/smtp-source (debconf: No configuration) …")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(
            ["debconf-set-selections"],
            input=b"postfix postfix/main_mailer_type select No configuration\n",
            check=True,
            timeout=60,
        )
        install = ["apt-get", "install", "-y", "-q", "postfix"]
        proc = subprocess.run(install, check=False, env=env, capture_output=True, timeout=600)
        if proc.returncode != 0:  # an old or empty package list: update once, then try again
            subprocess.run(
                ["apt-get", "update", "-q"], check=False, env=env, capture_output=True, timeout=600
            )
            proc = subprocess.run(install, check=False, env=env, capture_output=True, timeout=600)
        if proc.returncode != 0:
            sys.exit(
                f"apt-get install postfix failed: {proc.stderr.decode(errors='replace')[-800:]}"
            )
        if postfix_running():  # the install must not leave a mail daemon behind
            log("the install started Postfix; stopping it")
            subprocess.run(
                [find_tool("postfix") or "postfix", "stop"],
                check=False,
                capture_output=True,
                timeout=60,
            )
        sink, source = find_tool("smtp-sink"), find_tool("smtp-source")
        if not (sink and source):
            sys.exit("postfix installed but smtp-sink/smtp-source not found")
    version = None
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "postfix"],
            check=False,
            capture_output=True,
            text=True,
            timeout=20,
        )
        version = out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return sink, source, version or "unknown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Sink:
    """`smtp-sink -u nobody -c 127.0.0.1:PORT 1000`, on a fresh port, stopped on exit."""

    def __init__(self, exe: str, folder: Path):
        self.exe, self.folder = exe, folder
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.out: Path | None = None

    def __enter__(self) -> Sink:
        self.port = free_port()
        self.out = self.folder / f"sink-{self.port}.out"
        argv = [self.exe]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # required as root: it drops to this user after binding
        argv += ["-c", f"{HOST}:{self.port}", "1000"]
        self.proc = subprocess.Popen(
            argv, stdout=self.out.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"smtp-sink exited {self.proc.returncode}: "
                    f"{self.out.read_text(errors='replace')[-300:]}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        break
            except OSError:
                time.sleep(0.05)
        else:
            self.__exit__()
            raise RuntimeError("smtp-sink did not answer within 10 s")
        return self

    def cpu(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid) if self.proc else None

    def messages(self) -> int | None:
        """The sink's own count of messages (its -c counter's last 'mesg=')."""
        try:
            found = re.findall(rb"mesg=(\d+)", self.out.read_bytes()) if self.out else []
        except OSError:
            return None
        return int(found[-1]) if found else 0

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


# ------------------------------------------------------------------ children
def run_child(
    argv: list[str], *, env: dict[str, str], timeout: float, stdout: Path, sink: Sink
) -> dict:
    """Run one process to its end (killed after ``timeout``); wall, CPU, peak RSS from wait4()."""
    busy0, _ = cpu_jiffies()
    sink0 = sink.cpu() or 0.0
    t0 = time.perf_counter()
    with stdout.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    killed = []

    def kill() -> None:
        killed.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    busy1, _ = cpu_jiffies()
    child_cpu = usage.ru_utime + usage.ru_stime
    sink_cpu = (sink.cpu() or 0.0) - sink0
    tick = os.sysconf("SC_CLK_TCK")
    other = max(0.0, (busy1 - busy0) / tick - child_cpu - sink_cpu)
    text = stdout.read_text(errors="replace")
    if killed:
        raise RuntimeError(f"{argv[0]} … killed after {timeout:.0f} s: {text[-300:]}")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} … exited {proc.returncode}: {text[-800:]}")
    return {
        "wall": wall,
        "cpu": child_cpu,
        "cpu_user": usage.ru_utime,
        "cpu_sys": usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024,  # Linux: KiB
        "sink_cpu": sink_cpu,
        "other_load": other / wall if wall > 0 else 0.0,  # cores busy with other processes
        "output": text,
    }


_COMMON = r"""
import asyncio, json, os, resource, sys, time
from pathlib import Path
import aiosmtplib
from aiosmtplib.errors import SMTPDataError, SMTPServerDisconnected, SMTPTimeoutError

def patch_data(stuff=True):
    # The proposed fix, simulated: render() output is CRLF-only (checked below), so
    # aiosmtplib's line-ending re.sub is a no-op; dot-stuff with one bytes.replace and
    # write DATA's payload directly, with the same replies and errors as SMTP.data().
    async def data(self, message, /, *, timeout=None):
        # stuff=False: the cost of dot-stuffing left out, as when render() stuffs its static
        # pieces once (the substituted values are a few hundred bytes): the wire bytes then
        # differ only in those lines
        payload = message.replace(b"\r\n.", b"\r\n..") if stuff else message
        if payload[:1] == b".":
            payload = b"." + payload
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        timeout = self.timeout if timeout is None else timeout
        start = await self.execute_command(b"DATA", timeout=timeout)
        if start.code != 354:
            raise SMTPDataError(start.code, start.message)
        try:
            self.protocol.write(payload + b".\r\n")
            response = await self.protocol.read_response(timeout=timeout)
        except (SMTPServerDisconnected, SMTPTimeoutError):
            self.close()
            raise
        if response.code != 250:
            raise SMTPDataError(response.code, response.message)
        return response
    aiosmtplib.SMTP.data = data

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def check_crlf(data):
    import re
    assert not re.search(rb"(?<!\r)\n|\r(?!\n)", data), "render() output is not CRLF-only"
"""

_ENGINE = (
    _COMMON
    + r"""
from dispatch_mail.delivery import campaign
from dispatch_mail.delivery.engine import SendOptions
from dispatch_mail.delivery.smtp import SmtpSettings
csv_path, journal_path = sys.argv[1], Path(sys.argv[2])
port, concurrency, mode = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
prepared = campaign.prepare(Path(sys.argv[6]))
check_crlf(prepared.messages.render("a.b@example.com", {"name": "A B"}, "<x@example.com>",
                                    "Thu, 01 Jan 2026 00:00:00 +0000"))
if mode in ("fix", "fix_prestuffed"):
    patch_data(stuff=mode == "fix")
journal, plan = campaign.open_send(prepared, csv_path, journal_path=journal_path)
spent = [0.0, 0, 0.0, 0, 0.0]  # wall s, calls, CPU s, calls over 1 ms, wall s in those
if mode == "nojournal":
    # the two commits per message are skipped; rows are still read from the journal
    journal.mark_sending = lambda row_id, **k: None
    journal.mark_sent = lambda row_id, code, reply: None
    # rows stay 'pending': without this the engine would send them again
    journal.next_retry_at = lambda: None
else:
    def timed(fn):
        def wrapper(*a, **k):
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                dt = time.perf_counter() - t
                spent[0] += dt
                spent[1] += 1
                spent[2] += time.thread_time() - c
                if dt > 0.001:  # a stall: a WAL checkpoint's fsync, or the disk busy
                    spent[3] += 1
                    spent[4] += dt
        return wrapper
    journal.mark_sending = timed(journal.mark_sending)
    journal.mark_sent = timed(journal.mark_sent)
settings = SmtpSettings(host="127.0.0.1", port=port, tls="none")
options = SendOptions(concurrency=concurrency)
c0 = cpu()
summary = asyncio.run(campaign.run_send(journal, prepared, settings, options))
c1 = cpu()
counts = journal.counts()
journal.close()
print(json.dumps({"sent": summary.sent, "failed": summary.failed, "seconds": summary.duration,
                  "send_cpu": c1 - c0, "journal_write_s": spent[0], "journal_writes": spent[1],
                  "journal_cpu_s": spent[2], "journal_stalls": spent[3],
                  "journal_stall_s": spent[4],
                  "journal_sent": counts["sent"], "pending": plan.to_send}))
"""
)

_BARE = (
    _COMMON
    + r"""
n, port, concurrency = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
mode, message_file = sys.argv[4], sys.argv[5]
data = Path(message_file).read_bytes()
check_crlf(data)
if mode == "fix":
    patch_data()
left = [n]

async def worker():
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False,
                             timeout=30, local_hostname="localhost")
    await client.connect()
    sent = 0
    try:
        while left[0] > 0:
            left[0] -= 1
            await client.mail("newsletter@dpdk.org")
            await client.rcpt(f"user{left[0]}@example.com")
            await client.data(data)
            sent += 1
    finally:
        await client.quit()
    return sent

async def main():
    t = time.perf_counter()
    c0 = cpu()
    sent = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
    return sent, time.perf_counter() - t, cpu() - c0

sent, seconds, send_cpu = asyncio.run(main())
print(json.dumps({"sent": sent, "failed": 0, "seconds": seconds, "send_cpu": send_cpu}))
"""
)

SUMMARY_RE = re.compile(r"sent ([\d,]+), failed ([\d,]+), still pending ([\d,]+), in ([\d.]+)s")


def console_script() -> str:
    beside = Path(sys.executable).parent / "dispatch"
    if beside.is_file():
        return str(beside)
    found = shutil.which("dispatch")
    if not found:
        sys.exit("no `dispatch` console script found: pip install -e . first")
    return found


class Bench:
    def __init__(self, args, tmp: Path, sink_exe: str, source_exe: str):
        self.args, self.tmp, self.sink_exe, self.source_exe = args, tmp, sink_exe, source_exe
        self.env = dict(os.environ)
        self.env.setdefault("DISPATCH_UNSUBSCRIBE_SECRET", SECRET)
        self.dispatch = console_script()
        shm = Path("/dev/shm")
        self.tmpfs = (
            Path(tempfile.mkdtemp(prefix="dispatch-bench-", dir=shm))
            if shm.is_dir() and fs_type(shm) == "tmpfs"
            else None
        )
        self.message_file = tmp / "message.eml"
        self.counter = 0

    def close(self) -> None:
        if self.tmpfs:
            shutil.rmtree(self.tmpfs, ignore_errors=True)

    def timeout(self, n: int) -> float:
        return 60 + n / 40  # generous: 40 messages/s would already be a failure

    def fresh_journal(self, on_tmpfs: bool = False) -> Path:
        self.counter += 1
        folder = self.tmpfs if on_tmpfs and self.tmpfs else self.tmp
        return folder / f"run-{self.counter}.journal"

    def measure(self, variant: str, n: int, csv_path: Path, issue: Path = ISSUE) -> dict:
        c = self.args.concurrency
        with Sink(self.sink_exe, self.tmp) as sink:
            out = self.tmp / f"{variant}-{n}.out"
            if variant in ("dispatch", "dispatch_tmpfs"):
                if variant == "dispatch_tmpfs" and not self.tmpfs:
                    return {"skipped": "no tmpfs at /dev/shm"}
                journal = self.fresh_journal(on_tmpfs=variant == "dispatch_tmpfs")
                argv = [
                    self.dispatch,
                    "send",
                    str(issue),
                    "--list",
                    str(csv_path),
                    "--smtp-host",
                    HOST,
                    "--smtp-port",
                    str(sink.port),
                    "--tls",
                    "none",
                    "--yes",
                    "--journal",
                    str(journal),
                    "--concurrency",
                    str(c),
                    "--rate",  # the project's profile says 50/s: the benchmark is unthrottled
                    "100000",
                    "-q",
                ]
                r = run_child(argv, env=self.env, timeout=self.timeout(n), stdout=out, sink=sink)
                m = SUMMARY_RE.search(r["output"])
                if not m:
                    raise RuntimeError(
                        f"no summary line in dispatch's output: {r['output'][-500:]}"
                    )
                sent, failed = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))
                r.update(
                    sent=sent,
                    failed=failed,
                    seconds=float(m.group(4)),
                    journal_fs=fs_type(journal.parent),
                )
                r["rate"] = sent / r["seconds"] if r["seconds"] > 0 else 0.0
                r["process_rate"] = sent / r["wall"]
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{journal}{suffix}").unlink(missing_ok=True)
            elif variant.startswith("engine"):
                mode = {
                    "engine": "journal",
                    "engine_nojournal": "nojournal",
                    "engine_fix": "fix",
                    "engine_fix_prestuffed": "fix_prestuffed",
                }[variant]
                journal = self.fresh_journal()
                argv = [
                    sys.executable,
                    "-c",
                    _ENGINE,
                    str(csv_path),
                    str(journal),
                    str(sink.port),
                    str(c),
                    mode,
                    str(ISSUE),
                ]
                r = run_child(argv, env=self.env, timeout=self.timeout(n), stdout=out, sink=sink)
                r.update(json.loads(r["output"].strip().splitlines()[-1]))
                r["rate"] = r["sent"] / r["seconds"]
                r["journal_fs"] = fs_type(journal.parent)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{journal}{suffix}").unlink(missing_ok=True)
            elif variant.startswith("bare"):
                mode = "fix" if variant == "bare_fix" else "plain"
                argv = [
                    sys.executable,
                    "-c",
                    _BARE,
                    str(n),
                    str(sink.port),
                    str(c),
                    mode,
                    str(self.message_file),
                ]
                r = run_child(argv, env=self.env, timeout=self.timeout(n), stdout=out, sink=sink)
                r.update(json.loads(r["output"].strip().splitlines()[-1]))
                r["rate"] = r["sent"] / r["seconds"]
            elif variant == "smtp_source":
                lf = (
                    self.tmp / "message-lf.eml"
                )  # smtp-source -F adds CRLF to each line and dot-stuffs
                if not lf.exists():
                    lf.write_bytes(self.message_file.read_bytes().replace(b"\r\n", b"\n"))
                argv = [
                    self.source_exe,
                    "-s",
                    str(c),
                    "-m",
                    str(n),
                    "-d",
                    "-F",
                    str(lf),
                    "-f",
                    SENDER,
                    "-t",
                    "user@example.com",
                    f"{HOST}:{sink.port}",
                ]
                r = run_child(argv, env=self.env, timeout=self.timeout(n), stdout=out, sink=sink)
                r.update(sent=n, failed=0, seconds=r["wall"], send_cpu=r["cpu"])
                r["rate"] = n / r["wall"]
            else:
                raise ValueError(variant)
            time.sleep(0.2)  # let the sink's counter reach its file
            r["sink_messages"] = sink.messages()
        r.pop("output", None)
        if r.get("failed"):
            raise RuntimeError(f"{variant}: {r['failed']} messages failed")
        if r["sent"] != n:
            raise RuntimeError(f"{variant}: sent {r['sent']} of {n}")
        if r["sink_messages"] is not None and r["sink_messages"] < n:
            raise RuntimeError(f"{variant}: smtp-sink counted {r['sink_messages']} of {n} messages")
        r["cpu_ms_per_msg"] = 1000 * (r.get("send_cpu") or r["cpu"]) / n
        return r


# ------------------------------------------------------------------ inputs
FIRST = (
    "Ada",
    "Linus",
    "Grace",
    "Ken",
    "Barbara",
    "José",
    "Zoë",
    "Søren",
    "Mei",
    "Olúwafẹ́mi",
    "Anna",
    "Thomas",
)
LAST = (
    "Lovelace",
    "Torvalds",
    "Hopper",
    "Thompson",
    "Liskov",
    "Müller",
    "García",
    "Kierkegaard",
    "Wang",
    "Smith",
)


def write_list(path: Path, n: int) -> None:
    """n unique recipients, `email,name`; a few names need RFC 2047 in To:."""
    rnd = random.Random(n)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["email", "name"])
        for i in range(n):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            w.writerow(
                [
                    f"{first.lower().encode('ascii', 'ignore').decode()}.{i}@example{i % 7}.org",
                    f"{first} {last}",
                ]
            )


def write_message(path: Path, env: dict[str, str]) -> int:
    """One recipient's message exactly as the engine renders it (CRLF), for (c), (d) and (f)."""
    code = (
        "import sys; from pathlib import Path; "
        "from dispatch_mail.delivery.campaign import prepare\n"
        "p = prepare(Path(sys.argv[1]))\n"
        "d = p.messages.render('ada.1@example1.org', {'name': 'Ada Lovelace'}, "
        "'<q1.bench.1@dpdk.org>', 'Thu, 26 Mar 2026 09:00:00 +0000')\n"
        "Path(sys.argv[2]).write_bytes(d)\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(ISSUE), str(path)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    return path.stat().st_size


# ------------------------------------------------------------------ per-message costs
_MICRO = r"""
import json, os, sys, tempfile, timeit
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from aiosmtplib.protocol import normalize_message_line_endings, PERIOD_REGEX
from dispatch_mail.delivery import campaign
prepared = campaign.prepare(Path(sys.argv[1]))
m = prepared.messages
args = ("ada.1@example1.org", {"name": "Ada Lovelace"}, "<q1.bench.1@dpdk.org>",
        "Thu, 26 Mar 2026 09:00:00 +0000")
data = m.render(*args)

def best(fn, n):
    return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6

out = {
    "render_us": best(lambda: m.render(*args), 2000),
    "format_datetime_us": best(lambda: format_datetime(datetime.now(timezone.utc)), 5000),
    "aiosmtplib_line_endings_us": best(lambda: normalize_message_line_endings(data), 300),
    "aiosmtplib_dot_stuffing_us": best(lambda: PERIOD_REGEX.sub(b"..", data), 300),
    "aiosmtplib_data_preprocessing_us": best(
        lambda: PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n", 300),
    "bytes_replace_stuffing_us": best(lambda: data.replace(b"\r\n.", b"\r\n.."), 1000),
    "message_bytes": len(data),
    "lines": data.count(b"\r\n"),
    "lines_starting_with_dot": data.count(b"\r\n."),
}
# a journal's two commits per message (mark_sending, mark_sent) in a journal of N rows, on disk;
# then the same with alternatives the engine could use (raw SQL on the same schema, same statements)
def journal_cost(folder, variant):
    journal, _ = campaign.open_send(prepared, sys.argv[2],
                                    journal_path=Path(folder) / f"{variant}.journal")
    conn = journal.conn
    if variant.startswith("partial_index"):
        conn.execute("DROP INDEX IF EXISTS recipients_by_state")
        conn.execute("CREATE INDEX IF NOT EXISTS recipients_pending "
                     "ON recipients(id) WHERE state='pending'")
    ids = [r[0] for r in conn.execute("SELECT id FROM recipients ORDER BY id LIMIT 5000")]
    out["journal_messages"] = len(ids)
    group = 16 if variant.startswith("group_commit_16") else 1
    t, c = time.perf_counter(), time.process_time()
    for k in range(0, len(ids), group):
        chunk = ids[k:k + group]
        if group > 1:
            conn.execute("BEGIN")
        for i in chunk:
            journal.mark_sending(i)
        if group > 1:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
        for i in chunk:
            journal.mark_sent(i, 250, "2.0.0 Ok: queued as 4F2C1B")
        if group > 1:
            conn.execute("COMMIT")
    wall = (time.perf_counter() - t) / len(ids) * 1e6
    cpu = (time.process_time() - c) / len(ids) * 1e6
    rows = conn.execute("SELECT COUNT(*) FROM recipients").fetchone()[0]
    journal.close()
    return wall, cpu, rows

import time
with tempfile.TemporaryDirectory(dir=sys.argv[3]) as folder:
    for variant in ("current", "partial_index", "group_commit_16"):
        samples = [journal_cost(folder, f"{variant}-{k}") for k in range(3)]
        for f in Path(folder).iterdir():
            f.unlink()
        out[f"journal_{variant}_wall_us"] = sorted(s[0] for s in samples)[1]
        out[f"journal_{variant}_cpu_us"] = sorted(s[1] for s in samples)[1]
        out["journal_rows"] = samples[0][2]
print(json.dumps(out))
"""


def micro_costs(env: dict[str, str], csv_path: Path, tmp: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _MICRO, str(ISSUE), str(csv_path), str(tmp)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-800:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ profile
def profile_dispatch(bench: Bench, csv_path: Path, n: int, top: int = 14) -> dict:
    """Where the dispatch send process spends its CPU: py-spy (sampling) if installed, else
    cProfile."""
    pyspy = shutil.which("py-spy")
    with Sink(bench.sink_exe, bench.tmp) as sink:
        journal = bench.fresh_journal()
        cli = [
            "send",
            str(ISSUE),
            "--list",
            str(csv_path),
            "--smtp-host",
            HOST,
            "--smtp-port",
            str(sink.port),
            "--tls",
            "none",
            "--yes",
            "--journal",
            str(journal),
            "--concurrency",
            str(bench.args.concurrency),
            "--rate",
            "100000",
            "-q",
        ]
        raw = bench.tmp / "profile.raw"
        if pyspy:
            argv = [
                pyspy,
                "record",
                "-r",
                "250",
                "-f",
                "raw",
                "-o",
                str(raw),
                "--",
                sys.executable,
                "-m",
                "dispatch_mail.cli",
                *cli,
            ]
            tool = "py-spy record -r 250 (sampling, on-CPU)"
        else:
            argv = [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(raw),
                "-m",
                "dispatch_mail.cli",
                *cli,
            ]
            tool = "cProfile (deterministic; inflates Python-level calls)"
        proc = subprocess.run(
            argv,
            check=False,
            cwd=ROOT,
            env=bench.env,
            capture_output=True,
            text=True,
            timeout=bench.timeout(n) * 2,
        )
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout)[-500:]}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{journal}{suffix}").unlink(missing_ok=True)
    self_time: dict[str, float] = {}
    inclusive: dict[str, float] = {}
    total = 0.0
    if pyspy:
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            k = int(count)
            total += k
            frames = [
                re.sub(r" \((?:.*/)?(?:site-packages/|lib/python3\.\d+/)?([^()]*?)\)$", r" (\1)", f)
                for f in stack.split(";")
            ]
            leaf = frames[-1]
            self_time[leaf] = self_time.get(leaf, 0) + k
            for f in {re.sub(r":\d+\)$", ")", f) for f in frames}:
                inclusive[f] = inclusive.get(f, 0) + k
    else:
        import pstats

        stats = pstats.Stats(str(raw)).stats  # type: ignore[attr-defined]
        for (file, line, name), (_, _, tt, ct, _) in stats.items():
            key = f"{name} ({Path(file).name}:{line})"
            self_time[key] = self_time.get(key, 0) + tt
            inclusive[key] = inclusive.get(key, 0) + ct
        total = max(inclusive.values()) if inclusive else 1.0

    def pct(d):
        return sorted(((k, 100 * v / total) for k, v in d.items()), key=lambda kv: -kv[1])[:top]

    watch = (
        "SMTPProtocol.execute_data_command",
        "SMTP.data",
        "Journal.mark_sending",
        "Journal.mark_sent",
        "PersonalMessages.render",
        "_SelectorSocketTransport.write",
        "SMTP.mail",
        "SMTP.rcpt",
        "Journal.add",
        "Journal.next_batch",
    )
    key_inclusive = {
        w: sum(v for k, v in inclusive.items() if k.startswith(w + " ")) * 100 / total
        for w in watch
    }
    return {"tool": tool, "n": n, "self": pct(self_time), "inclusive": key_inclusive}


# ------------------------------------------------------------------ run and report
def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run(args) -> dict:
    sink_exe, source_exe, postfix_version = ensure_postfix_tools(not args.no_install)
    result: dict = {
        "machine": machine_info(),
        "postfix": postfix_version,
        "concurrency": args.concurrency,
        "sizes": args.sizes,
        "repeats": args.repeats,
        "full_matrix_max": args.full_matrix_max,
    }
    with tempfile.TemporaryDirectory(prefix="dispatch-bench-send-") as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(args, tmp, sink_exe, source_exe)
        try:
            result["tmp_fs"] = fs_type(tmp)
            result["message_bytes"] = write_message(bench.message_file, bench.env)
            lists = {}
            for n in args.sizes:
                lists[n] = tmp / f"list-{n}.csv"
                write_list(lists[n], n)
            small = min(args.sizes)
            log(f"per-message costs (timeit, journal of {small:,} rows) …")
            result["micro"] = micro_costs(bench.env, lists[small], tmp)
            log("warm-up: one small dispatch send …")
            warm = tmp / "list-warm.csv"
            write_list(warm, 200)
            bench.measure("dispatch", 200, warm)
            runs: dict[str, dict[str, list[dict]]] = {}
            for n in args.sizes:
                matrix = FULL_MATRIX if n <= args.full_matrix_max else LARGE_MATRIX
                rounds = args.repeats if n <= args.full_matrix_max else 1
                runs[str(n)] = {v: [] for v in matrix}
                for round_no in range(
                    rounds
                ):  # interleaved, so that drift and other load hit every variant alike
                    for variant in matrix:
                        log(f"  n={n:,} round {round_no + 1}/{rounds}: {VARIANTS[variant][0]} …")
                        r = bench.measure(variant, n, lists[n])
                        if "skipped" not in r:
                            runs[str(n)][variant].append(r)
                            log(
                                f"      {r['rate']:,.0f} msg/s, "
                                f"{r['cpu_ms_per_msg']:.3f} ms CPU/msg, "
                                f"other load {r['other_load']:.2f} cores"
                            )
            result["runs"] = runs
            if not args.no_profile:
                n_prof = min(small, 10000)
                log(f"profile of one dispatch send ({n_prof:,} recipients) …")
                result["profile"] = profile_dispatch(
                    bench,
                    lists[small] if n_prof == small else _sub_list(lists[small], tmp, n_prof),
                    n_prof,
                )
        finally:
            bench.close()
    result["load_end"] = os.getloadavg()[0]
    result["summary"] = summarize(result)
    return result


def _sub_list(path: Path, tmp: Path, n: int) -> Path:
    out = tmp / f"list-{n}-profile.csv"
    with path.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i > n:
                break
            dst.write(line)
    return out


def summarize(r: dict) -> dict:
    """Medians per variant and size, ratios and targets."""
    table: dict[str, dict[str, dict]] = {}
    for n, variants in r["runs"].items():
        for v, samples in variants.items():
            if not samples:
                continue
            table.setdefault(n, {})[v] = {
                "rate": med([s["rate"] for s in samples]),
                "rate_min": min(s["rate"] for s in samples),
                "rate_max": max(s["rate"] for s in samples),
                "process_rate": med([s["process_rate"] for s in samples])
                if "process_rate" in samples[0]
                else None,
                "cpu_ms_per_msg": med([s["cpu_ms_per_msg"] for s in samples]),
                "maxrss_mb": max(s["maxrss_mb"] for s in samples),
                "other_load": med([s["other_load"] for s in samples]),
                "sink_cpu_ms_per_msg": med([1000 * s["sink_cpu"] / s["sent"] for s in samples]),
                "journal_share": med([s["journal_write_s"] / s["seconds"] for s in samples])
                if "journal_write_s" in samples[0]
                else None,
                "journal_us_per_msg": med([1e6 * s["journal_write_s"] / s["sent"] for s in samples])
                if "journal_write_s" in samples[0]
                else None,
                "journal_cpu_us_per_msg": med(
                    [1e6 * s["journal_cpu_s"] / s["sent"] for s in samples]
                )
                if "journal_cpu_s" in samples[0]
                else None,
                "journal_stalls": med([s["journal_stalls"] for s in samples])
                if "journal_stalls" in samples[0]
                else None,
                "journal_stall_share": med([s["journal_stall_s"] / s["seconds"] for s in samples])
                if "journal_stall_s" in samples[0]
                else None,
                "n": len(samples),
            }
    sizes = sorted(table, key=int)
    largest = sizes[-1]
    ratios = {}
    for n in sizes:
        t = table[n]
        d = t.get("dispatch")
        if not d:
            continue
        ratios[n] = {
            "dispatch_over_bare": d["rate"] / t["bare"]["rate"] if "bare" in t else None,
            "dispatch_over_source": d["rate"] / t["smtp_source"]["rate"]
            if "smtp_source" in t
            else None,
            # client CPU per message, bare / engine
            # (the engine's CPU is over the send only, like bare's)
            "bare_cpu_over_engine_cpu": (
                t["bare"]["cpu_ms_per_msg"] / t["engine"]["cpu_ms_per_msg"]
                if "bare" in t and "engine" in t
                else None
            ),
        }
    # journal: the full-matrix size with the most recipients
    journal = {}
    full = [n for n in sizes if "engine_nojournal" in table[n] and "engine" in table[n]]
    if full:
        n = full[-1]
        t = table[n]
        journal = {
            "n": n,
            "rate_cost": 1 - t["engine"]["rate"] / t["engine_nojournal"]["rate"],
            "cpu_cost": 1 - t["engine_nojournal"]["cpu_ms_per_msg"] / t["engine"]["cpu_ms_per_msg"],
            "time_share": t["engine"]["journal_share"],
            "us_per_msg": t["engine"]["journal_us_per_msg"],
            "cpu_us_per_msg": t["engine"]["journal_cpu_us_per_msg"],
            "cpu_share": t["engine"]["journal_cpu_us_per_msg"]
            / (1000 * t["engine"]["cpu_ms_per_msg"]),
            "stalls": t["engine"]["journal_stalls"],
            "stall_share": t["engine"]["journal_stall_share"],
            "disk_vs_tmpfs": (1 - t["dispatch"]["rate"] / t["dispatch_tmpfs"]["rate"])
            if "dispatch_tmpfs" in t
            else None,
        }
    d_large = table[largest].get("dispatch", {})
    targets = {}
    rate = d_large.get("rate")
    if rate is not None:
        targets["rate"] = {
            "value": rate,
            "goal": f"≥ {TARGET_RATE:,.0f} msg/s (n={int(largest):,})",
            "met": rate >= TARGET_RATE,
        }
    ratio = ratios.get(largest, {}).get("dispatch_over_bare")
    if ratio is not None:
        targets["bare_ratio"] = {
            "value": ratio,
            "goal": f"≥ {TARGET_BARE_RATIO:.0%} of bare aiosmtplib",
            "met": ratio >= TARGET_BARE_RATIO,
        }
    cpu_ratio = ratios.get(largest, {}).get("bare_cpu_over_engine_cpu")
    if cpu_ratio is None:  # the engine runs only at the full-matrix sizes
        cpu_ratio = next(
            (
                q["bare_cpu_over_engine_cpu"]
                for q in ratios.values()
                if q["bare_cpu_over_engine_cpu"]
            ),
            None,
        )
    if cpu_ratio is not None:
        targets["bare_cpu_ratio"] = {
            "value": cpu_ratio,
            "goal": f"≥ {TARGET_BARE_RATIO:.0%} of bare aiosmtplib",
            "met": cpu_ratio >= TARGET_BARE_RATIO,
        }
    if d_large:
        targets["peak_mb"] = {
            "value": d_large["maxrss_mb"],
            "goal": f"< {TARGET_PEAK_MB:.0f} MB at n={int(largest):,}",
            "met": d_large["maxrss_mb"] < TARGET_PEAK_MB,
        }
    if journal:
        # judged on the share of the send's wall time spent inside the journal's writes (fsync
        # stalls included), measured within each journaled run: while the one event-loop thread is
        # in SQLite nothing is sent, so this is the throughput the journal takes. Unlike the
        # difference between two separate runs, it does not move with other load on a shared
        # machine.
        targets["journal"] = {
            "value": journal["time_share"],
            "goal": f"< {TARGET_JOURNAL_SHARE:.0%} of throughput",
            "met": journal["time_share"] < TARGET_JOURNAL_SHARE,
        }
    return {
        "table": table,
        "ratios": ratios,
        "journal": journal,
        "targets": targets,
        "largest": largest,
    }


def markdown(r: dict) -> str:
    s, m = r["summary"], r["machine"]
    out = ["### Machine", ""]
    out.append(
        f"- CPU: {m['cpu']}, {m['cores']} cores; {m['os']}; {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
        + f"; Postfix {r['postfix']}"
    )
    out.append(
        f"- Load average (1 min) at start / end: {m['load_start']:.2f} / {r['load_end']:.2f}; "
        f"temp folder on {r['tmp_fs']}; message {r['message_bytes']:,} bytes; "
        f"concurrency {r['concurrency']}"
    )
    out += [
        "",
        (
            f"### Throughput (median of {r['repeats']} interleaved rounds "
            f"up to {r['full_matrix_max']:,} recipients, one round above)"
        ),
        "",
    ]
    out.append(
        "| n | measurement | msg/s (median) | min–max | CPU ms/msg (client) | 1000 / CPU ms "
        "| sink CPU ms/msg | peak RSS MB | other load (cores) |"
    )
    out.append("|--:|---|--:|--:|--:|--:|--:|--:|--:|")
    for n, variants in s["table"].items():
        for v, t in variants.items():
            rate = f"{t['rate']:,.0f}"
            if t.get("process_rate"):
                rate += f" ({t['process_rate']:,.0f} whole process)"
            rss = f"{t['maxrss_mb']:.0f}" if VARIANTS[v][1] != "source" else "–"
            label = VARIANTS[v][0].replace("-s C", f"-s {r['concurrency']}")
            out.append(
                f"| {int(n):,} | {label} | {rate} | "
                f"{t['rate_min']:,.0f}–{t['rate_max']:,.0f} | {t['cpu_ms_per_msg']:.3f} | "
                f"{1000 / t['cpu_ms_per_msg']:,.0f} | "
                f"{t['sink_cpu_ms_per_msg']:.3f} | "
                f"{rss} | {t['other_load']:.2f} |"
            )
    out += [
        "",
        (
            '`dispatch send` rates are its own "in Ns (R/s)" line (the send, after the list is '
            'loaded into the journal); "whole process" is recipients / process wall time. '
            "CPU ms/msg is the client's CPU over the send "
            '(for `dispatch send` and smtp-source: the whole process). "Other load" is CPU used '
            "by processes other than the client and the sink during the measurement, in cores. "
            '"1000 / CPU ms" is the rate one '
            "core could reach if the client is CPU-bound "
            "(it is: each client runs one event loop on one thread), "
            "whatever the other load."
        ),
        "",
    ]
    out.append(
        "| n | dispatch / bare aiosmtplib (msg/s) | dispatch / smtp-source (msg/s) "
        "| bare / engine (client CPU per message) |"
    )
    out.append("|--:|--:|--:|--:|")

    def pc(x):
        return f"{x:.0%}" if x is not None else "–"

    for n, q in s["ratios"].items():
        out.append(
            f"| {int(n):,} | {pc(q['dispatch_over_bare'])} | {pc(q['dispatch_over_source'])} "
            f"| {pc(q['bare_cpu_over_engine_cpu'])} |"
        )
    j = s["journal"]
    if j:
        out += ["", f"### Journal cost (n={int(j['n']):,})", ""]
        out.append(
            "- time inside mark_sending + mark_sent (journaled engine runs): "
            f"**{j['time_share']:.1%} of the send's wall time**, "
            f"{j['us_per_msg']:.0f} µs per message, of which {j['cpu_us_per_msg']:.0f} µs CPU "
            f"({j['cpu_share']:.1%} of the engine's CPU per message); "
            f"{j['stalls']:.0f} calls took over 1 ms (WAL checkpoint fsync or a busy disk), "
            f"{j['stall_share']:.1%} of the send's wall time"
        )
        out.append(
            "- engine journaled vs journal writes skipped, medians of separate runs: "
            f"throughput {-j['rate_cost']:+.1%}; "
            f"client CPU per message {j['cpu_cost'] / (1 - j['cpu_cost']):+.1%}"
        )
        if j["disk_vs_tmpfs"] is not None:
            out.append(
                "- `dispatch send` with the journal on disk vs tmpfs: "
                f"{-j['disk_vs_tmpfs']:+.1%} throughput"
            )
    mi = r["micro"]
    out += ["", "### Per-message CPU (timeit, best of 5)", "", "| step | µs |", "|---|--:|"]
    for key, label in (
        ("render_us", "PersonalMessages.render (personalized bytes)"),
        ("format_datetime_us", "Date header (format_datetime)"),
        ("aiosmtplib_line_endings_us", "aiosmtplib data(): line-ending re.sub"),
        ("aiosmtplib_dot_stuffing_us", "aiosmtplib data(): dot-stuffing re.sub"),
        ("aiosmtplib_data_preprocessing_us", "aiosmtplib data(): both, + final copy"),
        ("bytes_replace_stuffing_us", "dot-stuffing with bytes.replace instead"),
    ):
        out.append(f"| {label} | {mi[key]:.1f} |")
    out += [
        "",
        f"Journal writes per message, on disk, journal of {mi['journal_rows']:,} rows, "
        f"{mi['journal_messages']:,} messages, median of 3:",
        "",
        "| journal writes | wall µs/msg | CPU µs/msg |",
        "|---|--:|--:|",
    ]
    for key, label in (
        ("current", "now: mark_sending + mark_sent, one commit each, index on (state, id)"),
        (
            "partial_index",
            "same, index only on pending rows (`ON recipients(id) WHERE state='pending'`)",
        ),
        ("group_commit_16", "same statements, 16 messages per commit (group commit)"),
    ):
        out.append(
            f"| {label} | {mi[f'journal_{key}_wall_us']:.1f} | {mi[f'journal_{key}_cpu_us']:.1f} |"
        )
    out.append(
        f"\nMessage: {mi['message_bytes']:,} bytes, {mi['lines']:,} lines, "
        f'{mi["lines_starting_with_dot"]} starting with ".".'
    )
    p = r.get("profile")
    if p and "error" not in p:
        out += [
            "",
            f"### Profile of one `dispatch send` ({p['n']:,} recipients, {p['tool']})",
            "",
            "| function (self) | % of samples |",
            "|---|--:|",
        ]
        for name, pct in p["self"]:
            out.append(f"| `{name}` | {pct:.1f} |")
        out += ["", "| inclusive | % |", "|---|--:|"]
        for name, pct in p["inclusive"].items():
            out.append(f"| `{name}` | {pct:.1f} |")
    elif p:
        out.append(f"\nprofile failed: {p['error']}")
    out += ["", "### Targets", "", "| target | measured | goal | met |", "|---|--:|---|---|"]
    names = {
        "rate": "personalized, journaled msg/s, 16 connections",
        "bare_ratio": "dispatch / bare aiosmtplib",
        "bare_cpu_ratio": (
            "same, by client CPU per message (bare / engine): the rate ratio on an idle machine"
        ),
        "peak_mb": "peak RSS of `dispatch send`",
        "journal": "journal's cost in throughput",
    }
    fmt = {
        "rate": "{:,.0f} msg/s",
        "bare_ratio": "{:.0%}",
        "bare_cpu_ratio": "{:.0%}",
        "peak_mb": "{:.0f} MB",
        "journal": "{:.1%}",
    }
    for key, t in s["targets"].items():
        out.append(
            f"| {names[key]} | {fmt[key].format(t['value'])} | {t['goal']} "
            f"| {'yes' if t['met'] else '**no**'} |"
        )
    return "\n".join(out)


# ------------------------------------------------------------------ DKIM signing (--dkim)
_DKIM_MICRO = r"""
import json, sys, timeit
from pathlib import Path
import dkim
from dispatch_mail.delivery import campaign
plain = campaign.prepare(Path(sys.argv[1])).messages
signed = campaign.prepare(Path(sys.argv[2])).messages
key = Path(sys.argv[3]).read_bytes()
args = ("ada.1@example1.org", {"name": "Ada Lovelace"}, "<q1.bench.1@dpdk.org>",
        "Thu, 26 Mar 2026 09:00:00 +0000")
message = plain.render(*args)
names = signed.dkim.signed_names(message)

def best(fn, n):
    return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6

print(json.dumps({
    "message_bytes": len(message),
    "render_unsigned_us": best(lambda: plain.render(*args), 200),
    "render_signed_us": best(lambda: signed.render(*args), 200),
    "sign_us": best(lambda: signed.dkim.sign(message), 200),
    "prepare_us": best(lambda: signed.render_unsigned(*args), 200),
    "rsa_us": best(lambda: signed.dkim.keys[0].sign_digest(bytes(32)), 200),
    "dkimpy_sign_us": best(lambda: dkim.sign(message, b"bench", b"dpdk.org", key,
                                             include_headers=names,
                                             canonicalize=(b"relaxed", b"relaxed")), 20),
}))
"""


def dkim_project(tmp: Path) -> tuple[Path, Path]:
    """A copy of this repository's project that signs with a fresh 2048-bit key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    root = tmp / "signed-project"
    root.mkdir()
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copytree(ISSUE, root / "issues" / ISSUE.name)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp / "dkim-2048.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    settings = (ROOT / "dispatch.yaml").read_text(encoding="utf-8")
    settings += f"\ndkim:\n  domain: dpdk.org\n  selector: bench\n  key_file: {key_file}\n"
    (root / "dispatch.yaml").write_text(settings, encoding="utf-8")
    return root / "issues" / ISSUE.name, key_file


def dkim_run(args) -> dict:
    """Signed against unsigned `dispatch send`, same list, interleaved rounds, one run."""
    sink_exe, source_exe, postfix_version = ensure_postfix_tools(not args.no_install)
    result: dict = {
        "machine": machine_info(),
        "postfix": postfix_version,
        "concurrency": args.concurrency,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="dispatch-bench-dkim-") as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(args, tmp, sink_exe, source_exe)
        try:
            signed_issue, key_file = dkim_project(tmp)
            done = subprocess.run(
                [sys.executable, "-c", _DKIM_MICRO, str(ISSUE), str(signed_issue), str(key_file)],
                cwd=ROOT,
                env=bench.env,
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
            result["micro"] = json.loads(done.stdout.strip().splitlines()[-1])
            warm = tmp / "list-warm.csv"
            write_list(warm, 200)
            bench.measure("dispatch", 200, warm, signed_issue)
            for n in args.sizes:
                path = tmp / f"list-{n}.csv"
                write_list(path, n)
                rows: dict[str, list[dict]] = {"unsigned": [], "signed": []}
                for round_no in range(args.repeats):
                    for label, issue in (("unsigned", ISSUE), ("signed", signed_issue)):
                        log(f"  n={n:,} round {round_no + 1}/{args.repeats}: {label} …")
                        r = bench.measure("dispatch", n, path, issue)
                        log(f"      {r['rate']:,.0f} msg/s, {r['cpu_ms_per_msg']:.3f} ms CPU/msg")
                        rows[label].append(r)
                result["runs"][str(n)] = rows
        finally:
            bench.close()
    return result


def dkim_markdown(r: dict) -> str:
    m, micro = r["machine"], r["micro"]
    out = [
        f"Machine: {m['cpu']}, {m['cores']} cores; {m['python']}; Postfix {r['postfix']}; "
        f"message {micro['message_bytes']:,} bytes; concurrency {r['concurrency']}.",
        "",
        "| per message (best of 5) | µs |",
        "|---|--:|",
        f"| render, unsigned | {micro['render_unsigned_us']:,.0f} |",
        f"| render, signed (2048-bit RSA, relaxed/relaxed, oversigned) | "
        f"{micro['render_signed_us']:,.0f} |",
        f"| our signer alone, the message in one piece (OpenSSL RSA through `cryptography`) | "
        f"{micro['sign_us']:,.0f} |",
        f"| … the send's side: render, canonicalize, hash, no RSA (`render_unsigned`) | "
        f"{micro['prepare_us']:,.0f} |",
        f"| … the signing process's side: the RSA alone | {micro['rsa_us']:,.0f} |",
        f"| dkimpy's `dkim.sign`, same fields (pure-Python RSA) | {micro['dkimpy_sign_us']:,.0f} |",
        "",
        "| n | send | msg/s (median) | CPU ms/msg | ratio to unsigned |",
        "|--:|---|--:|--:|--:|",
    ]
    for n, rows in r["runs"].items():
        peer = med([x["rate"] for x in rows["unsigned"]])
        for label in ("unsigned", "signed"):
            rate = med([x["rate"] for x in rows[label]])
            cpu_ms = med([x["cpu_ms_per_msg"] for x in rows[label]])
            out.append(f"| {int(n):,} | {label} | {rate:,.0f} | {cpu_ms:.3f} | {rate / peer:.2f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="recipient counts, comma-separated (default 10000,100000)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="SMTP connections, the same for every measurement (default 16)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="interleaved rounds at sizes up to --full-matrix-max (default 3)",
    )
    parser.add_argument(
        "--full-matrix-max",
        type=int,
        default=20000,
        help="sizes up to this run every measurement; larger ones only dispatch send, "
        "bare aiosmtplib and smtp-source, once (default 20000)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2,000 recipients, one round"
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the profile of one dispatch send"
    )
    parser.add_argument("--no-install", action="store_true", help="never apt-get install postfix")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of Markdown"
    )
    parser.add_argument(
        "--dkim",
        action="store_true",
        help="only the DKIM comparison: signing cost per message, and dispatch send with a "
        "2048-bit key against the same send unsigned, interleaved",
    )
    args = parser.parse_args()
    if args.dkim:
        if args.quick:
            args.sizes, args.repeats = "2000", 1
        args.sizes = sorted({int(x) for x in str(args.sizes).split(",") if x.strip()})
        result = dkim_run(args)
        print(json.dumps(result, indent=2) if args.json else dkim_markdown(result))
        return
    if args.quick:
        args.sizes, args.repeats = "2000", 1
    try:
        args.sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    except ValueError:
        parser.error("--sizes takes integers, e.g. 10000,100000")
    if (
        not args.sizes
        or min(args.sizes) < 1
        or not 1 <= args.concurrency <= 256
        or not 1 <= args.repeats <= 20
    ):
        parser.error("sizes ≥ 1, 1 ≤ concurrency ≤ 256, 1 ≤ repeats ≤ 20")
    t0 = time.monotonic()
    result = run(args)
    result["benchmark_seconds"] = time.monotonic() - t0
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(markdown(result))
        print(f"\n(benchmark took {result['benchmark_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
