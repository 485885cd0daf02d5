"""The async SMTP engine: N reused connections, a global rate limit, retries, and the journal.

Every recipient is committed to the journal as ``sending`` before its
transaction and as ``sent`` only after the server's 250 to DATA. MAIL, RCPT and
DATA are sent as separate steps so that a failure before the final "." (safe
to retry) is told apart from one after it (the server may hold the message:
RFC 1047), which is retried but counted as a possible duplicate.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import signal
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from dispatch_mail.delivery.journal import Journal, Row
from dispatch_mail.errors import DeliveryError, DispatchError, UsageError
from dispatch_mail.mail.eml import PersonalMessages

THROTTLE_WORDS = ("rate", "too many", "throttl", "slow down", "quota", "limit")



@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str = "starttls"  # starttls | implicit | none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    timeout: float = 30.0
    cafile: str | None = None  # a private CA (tests, internal relays)

    def __post_init__(self) -> None:
        if self.tls not in ("starttls", "implicit", "none"):
            raise UsageError(f"--tls must be implicit, starttls or none, not {self.tls!r}")
        if self.tls == "none" and not (self.insecure or is_loopback(self.host)):
            raise UsageError(
                f"refusing plaintext SMTP to {self.host}: it is not a loopback address. "
                "Use --tls starttls or implicit, or --insecure if you really mean it"
            )
        if self.username and self.tls == "none":
            raise UsageError(
                "refusing to send a password over plaintext SMTP: use --tls starttls or implicit"
            )

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def describe(self) -> str:
        return f"{self.host}:{self.port} ({'TLS' if self.tls == 'implicit' else self.tls.upper() if self.tls != 'none' else 'plaintext'})"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class SendOptions:
    concurrency: int = 4
    rate: float | None = None  # messages per second, None = as fast as the relay takes them
    max_per_hour: int | None = None
    max_per_day: int | None = None
    max_attempts: int = 5
    retry_base: float = 5.0  # seconds before the first retry; doubles each attempt, with jitter
    retry_max: float = 600.0
    throttle_pause: float = 30.0  # pause of the whole send after a throttling reply
    abort_after_data_rejects: int = 5  # consecutive 5xx after DATA: the message itself is refused


@dataclass
class SendSummary:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    possibly_duplicated: int = 0
    throttled: int = 0
    connections: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    interrupted: bool = False
    stopped_reason: str | None = None

    @property
    def duration(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        return self.sent / self.duration if self.duration > 0 else 0.0


class RateLimiter:
    """A global token bucket that halves on throttling replies and recovers slowly."""

    def __init__(self, rate: float | None, burst: int):
        self.configured = rate
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.last = time.monotonic()
        self.paused_until = 0.0
        self._last_change = time.monotonic()
        self._measure_from = 0.0
        self.successes = 0
        self._lock = asyncio.Lock()
        self._recent: list[float] = []

    def free_now(self) -> bool:
        """True when a message may go without waiting: no rate set, no pause, nobody queued."""
        return (
            self.rate is None and time.monotonic() >= self.paused_until and not self._lock.locked()
        )

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                if self.rate is None:
                    return
                self._recover(now)
                if self.rate is None:
                    return
                self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)

    RECOVERY_EVERY = 2.0  # seconds of calm after which a throttled rate grows by a quarter
    UNLIMITED_AGAIN = 1000.0  # a recovered rate above this, with no rate configured: no limit again

    def _recover(self, now: float) -> None:
        """Grow a throttled rate with time as well as with successes.

        At a low rate successes are rare, so recovering only per success would leave a
        send that met a few throttling replies crawling for hours.
        """
        calm = now - max(self._last_change, self.paused_until)
        if self.rate is None or calm < self.RECOVERY_EVERY:
            return
        steps = min(int(calm // self.RECOVERY_EVERY), 64)
        self._last_change = now
        grown = self.rate * 1.25**steps
        if self.configured is not None:
            self.rate = min(self.configured, grown)
        else:
            self.rate = None if grown > self.UNLIMITED_AGAIN else grown

    def record_success(self) -> None:
        now = time.monotonic()
        self._recent.append(now)
        if len(self._recent) > 200:
            del self._recent[:100]
        self.successes += 1
        if self.rate is not None and self.successes % 50 == 0:
            ceiling = self.configured
            self.rate = self.rate * 1.1 if ceiling is None else min(ceiling, self.rate * 1.1)
            if ceiling is None and self.successes > 2000:
                self.rate = None  # back to unlimited after a long calm

    def throttle(self, pause: float, *, slow_down: bool = True) -> None:
        """Pause everyone; when the relay asked us to slow down, go on at half the rate we were going at.

        The rate is measured over the span the recent successes really cover: a
        send that is 0.1 s old and has sent 50 messages went at about 500/s, not
        at 50/5 s = 10/s. Without successes to measure there is no rate to halve
        and the pause alone does the work (a repeated halving on no evidence
        would leave a long send crawling at the 0.2/s floor after a short blip).
        """
        now = time.monotonic()
        already_paused = now < self.paused_until
        # the pace we kept is measured from the end of the last pause, not across it
        recent = [t for t in self._recent if now - t < 5 and t >= self._measure_from]
        self.paused_until = max(self.paused_until, now + pause)
        self._measure_from = self.paused_until
        self.tokens = 0
        if not slow_down or already_paused:
            # replies that arrive during a pause answer messages sent before it: one slow-down
            # per episode, or N connections hearing the same 421 would halve the rate N times
            return
        if len(recent) >= 2:
            observed = len(recent) / max(now - recent[0], 0.01)
            current = observed if self.rate is None else min(self.rate, observed)
        elif self.rate is not None:
            current = self.rate
        else:
            return
        self.rate = max(0.2, current / 2)
        self._last_change = self.paused_until
        self.successes = 0
        self._recent.clear()  # the next throttle measures the new pace, not the old one


async def send_data(client, data: bytes, timeout: float | None):
    """DATA, the message and the final ".", as aiosmtplib's ``data()`` but without its two regex passes.

    aiosmtplib normalizes line endings and dot-stuffs with ``re.sub`` over the whole
    message: about 0.6 ms for an 80 KB newsletter, more than half of the client's CPU
    per message (docs/performance.md). PersonalMessages.render() returns CRLF-only
    bytes, so dot-stuffing is one ``bytes.replace``. Falls back to ``data()`` when the
    aiosmtplib in use does not have the internals this mirrors.
    """
    import aiosmtplib

    protocol = client.protocol
    lock = getattr(protocol, "_command_lock", None)
    if protocol is None or lock is None or not hasattr(protocol, "_response_pending"):
        return await client.data(data, timeout=timeout)
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    try:
        async with lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            start = await protocol.read_response(timeout=timeout)
            if start.code != 354:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol._response_pending = True
            protocol.write(stuffed + b".\r\n")
            response = await protocol.read_response(timeout=timeout)
            if response.code != 250:
                raise aiosmtplib.SMTPDataError(response.code, response.message)
        return response
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()
        raise


def _smtp_code(exc: BaseException) -> tuple[int | None, str]:
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return (int(code) if isinstance(code, int) and code > 0 else None), " ".join(
        str(message).split()
    )


class Sender:
    """One send: the workers, the limiter and the journal, until nothing is pending."""

    def __init__(
        self,
        journal: Journal,
        messages: PersonalMessages,
        settings: SmtpSettings,
        options: SendOptions,
        progress: Callable[[SendSummary, dict[str, int]], None] | None = None,
    ):
        self.journal = journal
        self.messages = messages
        self.settings = settings
        self.options = options
        self.progress = progress
        self.summary = SendSummary()
        self.limiter = RateLimiter(options.rate, burst=options.concurrency)
        self.stop = asyncio.Event()
        self.fatal: DeliveryError | None = None
        self.crash: Exception | None = None
        self.data_rejects_in_a_row = 0
        self.connect_failures_in_a_row = 0
        self.in_flight = 0
        self._accepted: dict[
            int, tuple[int, int, str]
        ] = {}  # per worker: accepted, not yet committed as sent

    # ------------------------------------------------------------------ connection
    async def connect(self):
        import aiosmtplib

        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.tls == "implicit",
            start_tls=s.tls == "starttls",
            tls_context=s.tls_context() if s.tls != "none" else None,
            timeout=s.timeout,
            local_hostname=socket.getfqdn() or "localhost",
        )
        await client.connect()
        if s.username:
            try:
                await client.login(s.username, s.password or "")
            except BaseException:
                client.close()  # the caller never sees this client: do not leave it open
                raise
        self.summary.connections += 1
        return client

    # ------------------------------------------------------------------ main loop
    async def run(self) -> SendSummary:
        loop = asyncio.get_running_loop()
        installed = False
        try:
            loop.add_signal_handler(signal.SIGINT, self._interrupt)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        queue: asyncio.Queue[Row | None] = asyncio.Queue(maxsize=self.options.concurrency * 2)
        self.journal.start_checkpoints()
        workers = [
            asyncio.create_task(self._worker(queue)) for _ in range(self.options.concurrency)
        ]
        ticker = asyncio.create_task(self._tick()) if self.progress else None
        try:
            await self._produce(queue)
            for _ in workers:
                await queue.put(None)  # each worker finishes the message in hand, then quits
            await asyncio.gather(*workers, return_exceptions=True)
        finally:
            # any other way out (a second Ctrl-C cancels everything) must not wait on the queue:
            # with the workers cancelled, a put on a full queue would wait forever
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if ticker:
                ticker.cancel()
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
            self.journal.stop_checkpoints()
            self.summary.ended = time.monotonic()
            if self.progress:
                self.progress(self.summary, self.journal.counts())
        if self.crash is not None:
            raise self.crash
        if self.fatal:
            raise self.fatal
        return self.summary

    def _interrupt(self) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.summary.interrupted = True
        self.stop.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.progress(self.summary, self.journal.counts())  # type: ignore[misc]

    async def _produce(self, queue: asyncio.Queue) -> None:
        last_id = 0
        while not self.stop.is_set():
            budget = self._quota_budget()
            if budget is not None and budget <= 0:
                return
            batch = self.journal.next_batch(last_id, 200 if budget is None else min(200, budget))
            if batch:
                for row in batch:
                    if self.stop.is_set():
                        return
                    await queue.put(row)
                    last_id = row.id
                if budget is not None and len(batch) >= budget:
                    # the quota is spoken for: let those finish, then count again (a failure frees its place)
                    await self._drain(queue)
                continue
            # nothing ready after last_id: wait for in-flight work, then rescan for retries
            await self._drain(queue)
            if self.stop.is_set():
                return
            retry_at = self.journal.next_retry_at()
            if retry_at is None:
                return  # nothing pending at all: done
            delay = retry_at - time.time()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.stop.wait(), timeout=min(delay, 5))
                except TimeoutError:
                    pass
            last_id = 0

    async def _drain(self, queue: asyncio.Queue) -> None:
        while (self.in_flight or not queue.empty()) and not self.stop.is_set():
            await asyncio.sleep(0.02)

    def _quota_budget(self) -> int | None:
        """How many more may be queued under --max-per-hour/--max-per-day (None: no quota)."""
        o = self.options
        budget: int | None = None
        for limit, window, label in (
            (o.max_per_hour, 3600, "hourly"),
            (o.max_per_day, 86400, "daily"),
        ):
            if limit is None:
                continue
            since = time.time() - window
            n = self.journal.conn.execute(
                "SELECT COUNT(*) FROM recipients WHERE state='sent' AND sent_at>?", (since,)
            ).fetchone()[0]
            if n >= limit:
                self.summary.stopped_reason = f"the {label} quota of {limit} messages is reached; run the same command again later"
                return 0
            budget = limit - n if budget is None else min(budget, limit - n)
        return budget

    # ------------------------------------------------------------------ one worker = one connection
    async def _worker(self, queue: asyncio.Queue) -> None:
        client = None
        worker = id(asyncio.current_task())
        try:
            while True:
                try:
                    row = queue.get_nowait()
                except asyncio.QueueEmpty:
                    self._commit_carry(worker)  # nothing follows at once: record the last one now
                    row = await queue.get()
                if row is None:
                    return
                if self.stop.is_set():
                    continue  # leave it pending for the next run
                self.in_flight += 1
                try:
                    client = await self._deliver(client, row, worker)
                except Exception as exc:  # noqa: BLE001 (reported by run())
                    # not an SMTP outcome but a fault of ours: stop the whole send, and keep
                    # draining the queue so that run() can finish and report it (a dead
                    # worker would leave the producer blocked on a full queue forever)
                    if self.crash is None:
                        self.crash = exc
                    self.stop.set()
                    if client is not None:
                        client.close()
                    client = None
                finally:
                    self.in_flight -= 1
        except asyncio.CancelledError:
            if client is not None:
                client.close()  # stopping now: no polite QUIT
                client = None
            raise
        finally:
            self._commit_carry(worker)
            if client is not None:
                try:
                    await asyncio.wait_for(client.quit(), timeout=5)
                except Exception:
                    client.close()

    def _commit_carry(self, worker: int) -> None:
        """Record as sent the message this connection had accepted, if not done yet."""
        accepted = self._accepted.pop(worker, None)
        if accepted is not None:
            self.journal.mark_sent(*accepted)

    async def _deliver(self, client, row: Row, worker: int = 0):
        import aiosmtplib

        if not self.limiter.free_now():
            self._commit_carry(worker)  # a wait may be long: do not keep the last one in 'sending'
        if not await self._wait_turn():
            return client  # stopped while waiting (Ctrl-C during a throttle pause): the row stays pending
        date = format_datetime(datetime.now(UTC))
        data = self.messages.render(row.email, row.fields, row.message_id, date)
        # the previous message of this connection becomes 'sent' in the same commit
        self.journal.mark_sending(row.id, after_sent=self._accepted.pop(worker, None))
        phase = "connect"
        try:
            if client is None or not client.is_connected:
                client = await self.connect()
            phase = "mail"
            await client.mail(self.messages.sender)
            phase = "rcpt"
            await client.rcpt(row.email)
            phase = "data"
            response = await send_data(client, data, self.settings.timeout)
        except aiosmtplib.SMTPAuthenticationError as exc:
            self._not_attempted(row, "authentication failed")
            if client is not None:
                client.close()
            self._abort(
                DeliveryError(f"{self.settings.describe()} refused our login: {_smtp_code(exc)[1]}")
            )
            return None
        except aiosmtplib.SMTPResponseException as exc:
            # the server answered: we know exactly what happened
            code, reply = _smtp_code(exc)
            if phase == "connect":
                await self._connect_failed(
                    row, f"{code} {reply}", refused=code is not None and code >= 500
                )
                return None
            client = await self._after_refusal(client, code)
            self._refused(row, phase, code, reply)
            return client
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            # no answer: before DATA's end it is safe to retry; during DATA the server may hold it
            code, reply = _smtp_code(exc)
            uncertain = phase == "data"
            if client is not None:
                client.close()
            if phase == "connect":
                low = reply.lower()
                # a certificate we do not trust, or no STARTTLS offered: retrying cannot help
                tls_failed = isinstance(exc, ssl.SSLError) or any(
                    w in low for w in ("certificate", "ssl", "starttls")
                )
                await self._connect_failed(row, reply, refused=tls_failed, tls=tls_failed)
                return None
            self._retry(row, None, f"{phase}: {reply}", uncertain=uncertain)
            return None
        # 250 to DATA: committed as sent with this connection's next 'sending' (or on its own, see _worker)
        self._accepted[worker] = (row.id, response.code, response.message)
        self.summary.sent += 1
        self.data_rejects_in_a_row = 0
        self.connect_failures_in_a_row = 0
        self.limiter.record_success()
        return client

    async def _wait_turn(self) -> bool:
        """Wait for the rate limiter, unless the send stops first (a pause can last minutes)."""
        if self.stop.is_set():
            return False
        if self.limiter.free_now():
            return True  # the common case costs no tasks
        turn = asyncio.ensure_future(self.limiter.acquire())
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({turn, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not turn.done():
                turn.cancel()
        return turn.done() and not turn.cancelled() and not self.stop.is_set()

    async def _connect_failed(
        self, row: Row, reply: str, *, refused: bool, tls: bool = False
    ) -> None:
        """The relay could not be reached: not the recipient's fault, so no attempt is counted."""
        self._not_attempted(row, reply)
        self.connect_failures_in_a_row += 1
        where = self.settings.describe()
        if tls:
            self._abort(DeliveryError(f"TLS with {where} failed: {reply}"))
        elif refused:
            self._abort(DeliveryError(f"{where} refused the connection: {reply}"))
        elif self.connect_failures_in_a_row >= max(10, 3 * self.options.concurrency):
            self._abort(
                DeliveryError(
                    f"cannot reach {where} ({reply}); nothing is lost: run the same command again later"
                )
            )
        else:
            # a relay that cannot be reached says nothing about our rate: back off, do not slow down
            self.limiter.throttle(
                min(self.options.throttle_pause, 2.0 * self.connect_failures_in_a_row),
                slow_down=False,
            )

    def _not_attempted(self, row: Row, reply: str) -> None:
        """Back to pending, the attempt uncounted: the message never reached the relay."""
        self.journal.conn.execute(
            "UPDATE recipients SET state='pending', attempts=MAX(0, attempts-1), last_reply=?, updated_at=? WHERE id=?",
            (f"not attempted: {reply}"[:500], time.time(), row.id),
        )

    async def _after_refusal(self, client, code: int | None):
        """Reset the transaction, or drop the connection when the server is closing it."""
        if code == 421 or client is None or not client.is_connected:
            if client is not None:
                client.close()
            return None
        try:
            await client.rset()
            return client
        except Exception:
            client.close()
            return None

    def _refused(self, row: Row, phase: str, code: int | None, reply: str) -> None:
        text = f"{code} {reply}" if code else reply
        if code is not None and 400 <= code < 500:
            if code in (421, 454) or any(w in reply.lower() for w in THROTTLE_WORDS):
                self.summary.throttled += 1
                self.limiter.throttle(self.options.throttle_pause)
            self._retry(row, code, f"{phase}: {text}")
            return
        if phase == "mail":
            # MAIL FROM names our sender, not the recipient: failing them one by one would
            # mark the whole list failed for good. Stop the send; nobody's attempt is spent.
            self._not_attempted(row, f"{phase}: {text}")
            self._abort(
                DeliveryError(
                    f"{self.settings.describe()} refuses our sender {self.messages.sender}: {text}; "
                    "fix the sender or the relay's settings, then run the same command again"
                )
            )
            return
        self.journal.mark_failed(row.id, code, f"{phase}: {text}")
        self.summary.failed += 1
        if phase == "data":
            self.data_rejects_in_a_row += 1
            if self.data_rejects_in_a_row >= self.options.abort_after_data_rejects:
                self._abort(
                    DeliveryError(
                        f"the relay rejected the message itself {self.data_rejects_in_a_row} times in a row "
                        f"(last: {text}); stopping the send. Fix the cause, then run the same command again"
                    )
                )

    def _retry(self, row: Row, code: int | None, reply: str, *, uncertain: bool = False) -> None:
        attempts = row.attempts + 1
        if uncertain:
            self.summary.possibly_duplicated += 1
        if attempts >= self.options.max_attempts:
            self.journal.mark_failed(row.id, code, f"gave up after {attempts} attempts: {reply}")
            self.summary.failed += 1
            return
        delay = min(self.options.retry_max, self.options.retry_base * 2 ** (attempts - 1))
        delay *= random.uniform(0.5, 1.5)
        self.journal.mark_retry(row.id, code, reply, time.time() + delay, uncertain=uncertain)
        self.summary.retried += 1

    def _abort(self, error: DeliveryError) -> None:
        if self.fatal is None:
            self.fatal = error
        self.stop.set()
