"""The async send engine: N reused connections, a global rate limit, retries, and the journal.

Every recipient is committed to the journal as ``sending`` before its
transaction and as ``sent`` only after the server's 250 to DATA. The transaction
(transaction.py: pipelined when the relay offers it) says which phase refused
and whether the message had left us, so that a failure before the body was
sent (safe to retry) is told apart from one after it (the server may hold the
message: RFC 1047), which is retried but counted as a possible duplicate.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

from dispatch_mail.delivery.connections import RelayConnector
from dispatch_mail.delivery.journal import Journal, Row, SentReply
from dispatch_mail.delivery.options import SendOptions as SendOptions
from dispatch_mail.delivery.options import SendSummary as SendSummary
from dispatch_mail.delivery.ratelimit import RateLimiter
from dispatch_mail.delivery.signing import SigningProcess
from dispatch_mail.delivery.smtp import (
    SmtpSettings,
    blames_us,
    is_throttling,
    reply_of,
    reset_or_drop,
)
from dispatch_mail.delivery.transaction import Attempt, transact
from dispatch_mail.errors import DeliveryError, DispatchError, RecipientDataError
from dispatch_mail.mail.personal import PersonalMessages

if TYPE_CHECKING:
    import aiosmtplib


Progress = Callable[[SendSummary, dict[str, int]], None]  # called twice a second, and at the end
# before each batch: the rows still allowed (the rest withdrawn from the journal by it)
Screen = Callable[[list[Row]], list[Row]]


class SendEngine:
    """One send: the workers, the limiter and the journal, until nothing is pending."""

    def __init__(
        self,
        journal: Journal,
        messages: PersonalMessages,
        settings: SmtpSettings,
        options: SendOptions,
        progress: Progress | None = None,
        screen: Screen | None = None,
    ):
        self.journal = journal
        self.screen = screen
        self.messages = messages
        self.settings = settings
        self.options = options
        self.progress = progress
        self.summary = SendSummary()
        self.limiter = RateLimiter(options.rate, burst=options.concurrency)
        self.stop = asyncio.Event()
        self.fatal: DispatchError | None = None
        self.crash: Exception | None = None
        self.connector = RelayConnector(
            settings,
            self.stop,
            attempts=options.connect_attempts,
            retry_base=options.retry_base,
            retry_max=options.retry_max,
            on_retry=options.on_retry,
            live=self._live_connections,
        )
        # recipients refused in a row with the same reply, by phase: (code, addresses)
        # per phase: the reply's code, and the rows refused with it in a row (email → row id)
        self._streaks: dict[str, tuple[int | None, dict[str, int]]] = {}
        self._signing: SigningProcess | None = None  # DKIM's RSA, on the other core
        self.in_flight = 0
        self._accepted: dict[int, SentReply] = {}  # per worker: accepted, not yet committed as sent
        self._clients: dict[int, aiosmtplib.SMTP | None] = {}  # per worker: its connection

    # ------------------------------------------------------------------ main loop
    async def run(self) -> SendSummary:
        loop = asyncio.get_running_loop()
        if self.messages.dkim is not None:
            self._signing = await SigningProcess.start(self.messages.dkim.keys)
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
        ticker = asyncio.create_task(self._tick(self.progress)) if self.progress else None
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
            if self._signing is not None:
                await self._signing.close()
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

    async def _tick(self, progress: Progress) -> None:
        while True:
            await asyncio.sleep(0.5)
            progress(self.summary, self.journal.counts())

    async def _produce(self, queue: asyncio.Queue[Row | None]) -> None:
        last_id = 0
        while not self.stop.is_set():
            budget = self._quota_budget()
            if budget is not None and budget <= 0:
                return
            batch = self.journal.next_batch(last_id, 200 if budget is None else min(200, budget))
            if batch and self.screen is not None:
                last_id = batch[-1].id
                try:
                    allowed = self.screen(batch)  # who unsubscribed or bounced meanwhile
                except DispatchError as exc:  # the store cannot say: mail nobody unchecked
                    self._abort(exc)
                    return
                self.summary.withdrawn += len(batch) - len(allowed)
                if not allowed:
                    continue
                batch = allowed
            if batch:
                for row in batch:
                    if self.stop.is_set():
                        return
                    await queue.put(row)
                    last_id = row.id
                if budget is not None and len(batch) >= budget:
                    # the quota is spoken for: let those finish, then count again
                    # (a failure frees its place)
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

    async def _drain(self, queue: asyncio.Queue[Row | None]) -> None:
        while (self.in_flight or not queue.empty()) and not self.stop.is_set():
            await asyncio.sleep(0.02)

    def _quota_budget(self) -> int | None:
        """How many more may be queued under the hourly and daily quotas (None: no quota)."""
        o = self.options
        budget: int | None = None
        for limit, window, label in (
            (o.max_per_hour, 3600, "hourly"),
            (o.max_per_day, 86400, "daily"),
        ):
            if limit is None:
                continue
            n = self.journal.sent_since(time.time() - window)
            if n >= limit:
                self.summary.stopped_reason = (
                    f"the {label} quota of {limit} messages is reached; "
                    "run the same command again later"
                )
                return 0
            budget = limit - n if budget is None else min(budget, limit - n)
        return budget

    # ------------------------------------------------------------------ one worker = one connection
    async def _worker(self, queue: asyncio.Queue[Row | None]) -> None:
        client: aiosmtplib.SMTP | None = None
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
                    client = self._clients[worker] = await self._deliver(client, row, worker)
                except Exception as exc:  # noqa: BLE001 (reported by run())
                    # not an SMTP outcome but a fault of ours: stop the whole send, and keep
                    # draining the queue so that run() can finish and report it (a dead
                    # worker would leave the producer blocked on a full queue forever)
                    if self.crash is None:
                        self.crash = exc
                    self.stop.set()
                    if client is not None:
                        client.close()
                    client = self._clients[worker] = None
                finally:
                    self.in_flight -= 1
        except asyncio.CancelledError:
            if client is not None:
                client.close()  # stopping now: no polite QUIT
                client = None
            raise
        finally:
            self._clients.pop(worker, None)
            self._commit_carry(worker)
            if client is not None:
                try:
                    await asyncio.wait_for(client.quit(), timeout=5)
                except Exception:
                    client.close()

    def _live_connections(self) -> int:
        return sum(1 for c in self._clients.values() if c is not None and c.is_connected)

    def _commit_carry(self, worker: int) -> None:
        """Record as sent the message this connection had accepted, if not done yet."""
        accepted = self._accepted.pop(worker, None)
        if accepted is not None:
            self.journal.mark_sent(*accepted)

    async def _deliver(
        self, client: aiosmtplib.SMTP | None, row: Row, worker: int = 0
    ) -> aiosmtplib.SMTP | None:
        import aiosmtplib

        if not self.limiter.free_now():
            self._commit_carry(worker)  # a wait may be long: do not keep the last one in 'sending'
        if not await self.limiter.wait_turn(self.stop):
            # stopped while waiting (Ctrl-C during a throttle pause): the row stays pending
            return client
        date = format_datetime(datetime.now(UTC))
        try:
            if self.messages.dkim is None or self._signing is None:
                data = self.messages.render(row.email, row.fields, row.message_id, date)
            else:  # the RSA in the signing process, on the other core
                message, pending = self.messages.render_unsigned(
                    row.email, row.fields, row.message_id, date
                )
                signatures = await self._signing.sign(pending)
                data = self.messages.dkim.finish(pending, signatures) + message
        except RecipientDataError as exc:
            # this recipient's own data makes no sendable message: fail them alone, unsent
            self.journal.mark_failed(row.id, None, f"not sent: {exc}")
            self.summary.failed += 1
            return client
        if client is None or not client.is_connected:
            self._commit_carry(worker)  # reaching the relay may take long
            try:
                client = await self.connector.open()
            except DeliveryError as exc:
                self._abort(exc)
                return None
            self.summary.connections = self.connector.opened
            if client is None:
                return None  # not now: the row stays pending, no attempt spent
            self._clients[worker] = client  # open: the relay answers this send
        # the previous message of this connection becomes 'sent' in the same commit
        self.journal.mark_sending(row.id, after_sent=self._accepted.pop(worker, None))
        attempt = Attempt()
        sender = self.messages.envelope_sender(row.id)
        try:
            reply = await transact(
                client,
                sender,
                row.email,
                data,
                self.settings.timeout,
                attempt,
                pipelining=self.settings.pipelining,
            )
        except aiosmtplib.SMTPResponseException as exc:
            code, text = reply_of(exc)
            if code is not None:  # the server answered: we know exactly what happened
                client = await reset_or_drop(client, code)
                self._refused(row, attempt.phase, code, text)
                return client
            failure: Exception | None = exc  # a reply we cannot read: as good as none
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            failure = exc
        else:
            failure = None
        if failure is not None:
            # no answer: before the body left us it is safe to retry; after, the server may
            # hold the message
            _, text = reply_of(failure)
            client.close()
            self._retry(row, None, f"{attempt.phase}: {text}", uncertain=attempt.body_sent)
            return None
        # 250 to DATA: committed as sent with this connection's next 'sending'
        # (or on its own, see _worker)
        self._accepted[worker] = (row.id, reply.code, reply.message)
        self.summary.sent += 1
        self._streaks.clear()  # the relay takes our message from us: no refusal streak holds
        self.limiter.record_success()
        return client

    # ------------------------------------------------------------------ outcomes
    def _refused(self, row: Row, phase: str, code: int | None, reply: str) -> None:
        text = f"{code} {reply}" if code else reply
        if code is not None and 400 <= code < 500:
            if is_throttling(code, reply):
                self.summary.throttled += 1
                self.limiter.throttle(self.options.throttle_pause)
            self._retry(row, code, f"{phase}: {text}")
            return
        if phase == "mail":
            # MAIL FROM names our sender, not the recipient: failing them one by one would
            # mark the whole list failed for good. Stop the send; nobody's attempt is spent.
            self.journal.mark_not_attempted(row.id, f"{phase}: {text}")
            self._abort(
                DeliveryError(
                    f"{self.settings.describe()} refuses our sender {self.messages.sender}: "
                    f"{text}; fix the sender or the relay's settings, "
                    "then run the same command again",
                    smtp_code=code,
                )
            )
            return
        self.journal.mark_failed(row.id, code, f"{phase}: {text}")
        self.summary.failed += 1
        if phase == "data" or (phase == "rcpt" and blames_us(reply)):
            self._count_refusal(row, phase, code, text)

    def _count_refusal(self, row: Row, phase: str, code: int | None, text: str) -> None:
        """Stop the send when the same refusal hits recipient after recipient.

        One copy may be refused for its recipient's own data; the same reply for different
        recipients in a row, none accepted in between (even at the same time), means the
        relay refuses the message itself, or our mail: going on would fail the whole list.
        The recipients of the streak were refused for that cause, not for themselves: they
        go back to pending, uncounted, so that the run after the fix reaches them.
        """
        last_code, streak = self._streaks.get(phase, (code, {}))
        streak = streak if last_code == code else {}  # another reply: another cause
        streak[row.email] = row.id
        self._streaks[phase] = (code, streak)
        n = len(streak)
        if n < self.options.abort_after_data_rejects:
            return
        for row_id in streak.values():
            self.journal.mark_not_attempted(row_id, f"{phase}: {text}")
        self.summary.failed -= n
        what = (
            f"the relay rejected the message itself {n} times in a row"
            if phase == "data"
            else f"{self.settings.describe()} will not take our mail: {n} recipients in a row "
            "refused"
        )
        self._abort(
            DeliveryError(
                f"{what} (last: {text}); stopping the send. "
                "Fix the cause, then run the same command again",
                smtp_code=code,
            )
        )

    def _retry(self, row: Row, code: int | None, reply: str, *, uncertain: bool = False) -> None:
        attempts = row.attempts + 1
        if uncertain:
            self.summary.possibly_duplicated += 1
        if attempts >= self.options.max_attempts:
            o = self.options
            reply = f"{attempts} attempts this run: {reply}"
            if self.journal.mark_deferred(row.id, code, reply, o.defer_retry, o.defer_lifetime):
                self.summary.deferred += 1
            else:
                self.summary.failed += 1
            return
        delay = min(self.options.retry_max, self.options.retry_base * 2 ** (attempts - 1))
        delay *= random.uniform(0.5, 1.5)
        self.journal.mark_retry(row.id, code, reply, time.time() + delay, uncertain=uncertain)
        self.summary.retried += 1

    def _abort(self, error: DispatchError) -> None:
        if self.fatal is None:
            self.fatal = error
        self.stop.set()
