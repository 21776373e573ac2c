"""One SQS consumer per (queue, connection) per event loop, shared by every wait reading AWS Batch job state-change
events from that queue (``events_queue_url``), as :mod:`~airflow_batch_jobs.triggers.shared_poll` shares a poll.

The first subscriber starts the loop: one aiobotocore SQS client (the amazon provider's ``SqsHook``), long polling
(``ReceiveMessage`` with ``WaitTimeSeconds`` 20, up to 10 messages): an idle queue costs three requests a minute,
whoever waits on it. Each message is parsed once (:func:`~airflow_batch_jobs.job_events.parse_event`: the job's
detail redacted), deduplicated by event id (a standard queue delivers at least once; EventBridge too) and handed to
every subscriber, which matches it to its own query; then the batch is deleted (``DeleteMessageBatch``). A message
is deleted only after every subscriber had it; one read when the loop stops before handing it over comes back after
the queue's visibility timeout. A malformed or foreign message is logged once per kind and deleted. A subscriber that
raises is logged and does not stop the others or the loop.

A queue that cannot be read (unreachable, throttled, access denied, deleted) is logged and read again after a
capped exponential backoff (1 s doubling to 60 s); the loop never ends on an error. Waits stay right meanwhile:
events only tell them when to list, and their safety-net polls go on. The last subscriber leaving stops the loop and
closes the client.

The client's region is the one the queue URL names (``https://sqs.<region>.amazonaws.com/<account>/<name>``: where
the queue is, whatever the connection's region, which is the Batch jobs'); for another endpoint (moto, LocalStack on
``http://127.0.0.1:<port>/<account>/<name>``), the hook's region and the connection's endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_batch_jobs import log_redaction
from airflow_batch_jobs.job_events import (
    DEDUP_MEMORY,
    ForeignEventError,
    MalformedEventError,
    RecentIds,
    parse_event,
)
from airflow_batch_jobs.triggers.shared_poll import shared_task

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from airflow_batch_jobs.job_events import JobEvent

log = logging.getLogger(__name__)

# ReceiveMessage's longest wait and largest batch.
WAIT_TIME_S = 20
MAX_MESSAGES = 10
# After a failed receive (or a client that could not be made): the first pause and the cap, doubling in between.
BACKOFF_S = (1.0, 60.0)
# Kinds of dropped messages logged (each once); more kinds than this are dropped without a line.
LOGGED_KINDS = 100

# sqs.<region>.amazonaws.com[.cn] (and LocalStack's sqs.<region>.localhost...), legacy <region>.queue.amazonaws.com
_REGION = r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
_QUEUE_HOSTS = (re.compile(rf"^sqs\.{_REGION}\."), re.compile(rf"^{_REGION}\.queue\.amazonaws\.com(?:\.cn)?$"))


def region_of(queue_url: str) -> str | None:
    """The region an SQS queue URL names, or None (a local endpoint: moto, LocalStack by IP)."""
    host = (urlsplit(queue_url).hostname or "").lower()
    if host == "queue.amazonaws.com":  # the legacy us-east-1 host
        return "us-east-1"
    for pattern in _QUEUE_HOSTS:
        found = pattern.match(host)
        if found is not None:
            return found["region"]
    return None


class EventConsumer:
    """The receive loop for one queue and connection in one event loop, and who it delivers to."""

    sleep = staticmethod(asyncio.sleep)  # the backoff's pause (tests swap it)
    wait_time_s = WAIT_TIME_S
    max_messages = MAX_MESSAGES
    backoff_s = BACKOFF_S
    _loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], EventConsumer]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, queue_url: str, connection: str, hook: Any) -> None:
        self.queue_url = queue_url
        self.connection = connection
        self.hook = hook
        self.client: Any = None
        self.subscribers: dict[object, Callable[[JobEvent], None]] = {}
        self.seen = RecentIds(DEDUP_MEMORY)
        self.failures = 0  # failed receives (or clients not made) in a row
        # counts, for logs and tests
        self.receives = 0  # ReceiveMessage calls answered
        self.received = 0  # messages
        self.delivered = 0  # events handed to the subscribers (each once)
        self.duplicates = 0  # events already delivered (same event id)
        self.malformed = 0
        self.foreign = 0
        self.deleted = 0
        self.receive_errors = 0
        self.delete_errors = 0
        self.deliver_errors = 0
        self._kinds: set[str] = set()  # dropped kinds logged
        self._failing_subscribers: set[object] = set()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def subscribe(
        cls,
        queue_url: str,
        connection_key: str,
        hook_factory: Callable[[], Any],
        deliver: Callable[[JobEvent], None],
    ) -> AsyncIterator[EventConsumer]:
        """Have ``deliver`` called with every event read from ``queue_url`` (on the client for ``connection_key``)
        for as long as the block runs; ``hook_factory`` makes the ``SqsHook`` (an
        :class:`~airflow_batch_jobs.hooks.events_queue.EventsQueueHook`) when the loop's consumer is started.
        ``deliver`` runs on the event loop: it should be quick and must not block."""
        consumers = cls._loops.setdefault(asyncio.get_running_loop(), {})
        key = (queue_url, connection_key)
        consumer = consumers.get(key)
        if consumer is None:
            consumer = consumers[key] = cls(queue_url, connection_key, hook_factory())
        token = object()
        consumer.subscribers[token] = deliver
        if consumer._task is None or consumer._task.done():
            consumer._task = shared_task(consumer._run())
            consumer._task.add_done_callback(consumer._ended)
        try:
            yield consumer
        finally:
            del consumer.subscribers[token]
            consumer._failing_subscribers.discard(token)
            if not consumer.subscribers:  # the last subscriber left: stop the loop, which closes its client
                if consumers.get(key) is consumer:
                    del consumers[key]
                task, consumer._task = consumer._task, None
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:  # a bug: the next subscriber starts it again
            log.error("The event consumer of %s stopped.", self.queue_url, exc_info=task.exception())

    # -- the loop -------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        log_redaction.install()  # SQS bodies hold the events' details: none logged unredacted at DEBUG
        while True:
            try:
                async with await self._client_context() as client:
                    self.client = client
                    try:
                        await self._read(client)
                    finally:
                        self.client = None
            except Exception as err:  # no client (connection, credentials, endpoint), or a bug: start again
                await self._failed(err, "cannot read")

    async def _client_context(self) -> Any:
        """The hook's aiobotocore client context, in the queue's region; made in a thread (it reads the connection)."""
        from asgiref.sync import sync_to_async

        hook, region = self.hook, region_of(self.queue_url)

        def make() -> Any:
            return hook.get_client_type(region_name=region or hook.region_name, deferrable=True)

        return await sync_to_async(make)()

    async def _read(self, client: Any) -> None:
        wait = self.wait_time_s
        read_timeout = getattr(getattr(getattr(client, "meta", None), "config", None), "read_timeout", None)
        if isinstance(read_timeout, int | float) and read_timeout <= wait:  # a long poll must end before the read
            wait = max(1, int(read_timeout) - 1)
            log.warning(
                "The SQS client's read_timeout (%s s) is shorter than the long poll: waiting %d s per ReceiveMessage "
                "on %s instead of %d s (set read_timeout above %d in the connection's config_kwargs).",
                read_timeout,
                wait,
                self.queue_url,
                self.wait_time_s,
                self.wait_time_s,
            )
        while True:
            try:
                response = await client.receive_message(
                    QueueUrl=self.queue_url, WaitTimeSeconds=wait, MaxNumberOfMessages=self.max_messages
                )
            except Exception as err:
                await self._failed(err, "cannot read")
                continue
            self.receives += 1
            if self.failures:
                log.info("Reading job state-change events from %s again.", self.queue_url)
                self.failures = 0
            messages = response.get("Messages") or []
            if messages:
                await self._handle(client, messages)

    async def _failed(self, err: Exception, what: str) -> None:
        """Log (the first failures of a run, then every doubling) and pause before trying again."""
        self.receive_errors += 1
        self.failures += 1
        first, cap = self.backoff_s
        pause = min(first * 2 ** min(self.failures - 1, 30), cap)
        if self.failures & (self.failures - 1) == 0:  # 1, 2, 4, 8, ...: a queue down for an hour logs a dozen lines
            log.warning(
                "Job state-change events: %s %s (%s: %s; %d time(s) in a row); trying again in %.0f s. Waits go on "
                "polling meanwhile.",
                what,
                self.queue_url,
                type(err).__name__,
                err,
                self.failures,
                pause,
            )
        await self.sleep(pause)

    async def _handle(self, client: Any, messages: list[dict[str, Any]]) -> None:
        """Parse, deduplicate and deliver a batch, then delete it."""
        entries: list[dict[str, str]] = []
        for message in messages:
            self.received += 1
            try:
                event = parse_event(message.get("Body") or "")
            except (MalformedEventError, ForeignEventError) as err:
                self._dropped(err, message)
            except Exception as err:  # a bug of ours in parsing: the message must still go, not come back forever
                self._dropped(MalformedEventError(f"unreadable ({type(err).__name__})"), message)
            else:
                if self.seen.add(event.event_id):
                    self._deliver(event)
                else:
                    self.duplicates += 1
            receipt = message.get("ReceiptHandle")
            if receipt:
                entries.append({"Id": str(len(entries)), "ReceiptHandle": receipt})
        if entries:
            await self._delete(client, entries)

    def _deliver(self, event: JobEvent) -> None:
        self.delivered += 1
        for token, deliver in list(self.subscribers.items()):
            try:
                deliver(event)
            except Exception:
                self.deliver_errors += 1
                if token not in self._failing_subscribers:  # once per subscriber: it may fail on every event
                    self._failing_subscribers.add(token)
                    log.exception(
                        "A wait failed on the event %s (job %s %s) from %s; the others had it.",
                        event.event_id,
                        event.job_id,
                        event.status,
                        self.queue_url,
                    )

    def _dropped(self, err: MalformedEventError | ForeignEventError, message: dict[str, Any]) -> None:
        """A message that is not an event for the waits: counted, its kind logged once, deleted with the batch."""
        if isinstance(err, MalformedEventError):
            self.malformed += 1
        else:
            self.foreign += 1
        if err.kind in self._kinds or len(self._kinds) >= LOGGED_KINDS:
            return
        self._kinds.add(err.kind)
        log.warning(
            "Deleting message %s from %s: %s Others of this kind are deleted without a line.",
            message.get("MessageId"),
            self.queue_url,
            err,
        )

    async def _delete(self, client: Any, entries: list[dict[str, str]]) -> None:
        try:
            response = await client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as err:
            self.delete_errors += 1
            log.warning(
                "Cannot delete %d message(s) from %s (%s: %s): they come back after the queue's visibility timeout "
                "and are dropped as duplicates.",
                len(entries),
                self.queue_url,
                type(err).__name__,
                err,
            )
            return
        failed = response.get("Failed") or []
        self.deleted += len(entries) - len(failed)
        if failed:
            self.delete_errors += 1
            log.warning(
                "%d of %d message(s) not deleted from %s (%s): they come back and are dropped as duplicates.",
                len(failed),
                len(entries),
                self.queue_url,
                ", ".join(sorted({str(f.get("Code")) for f in failed})),
            )
