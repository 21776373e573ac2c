"""One poll per (connection, query) per interval inside the triggerer, shared by every trigger waiting on it.

A hundred deferred sensors asking the same question cost the API calls of one: the first trigger to subscribe
starts a poll loop (one aiobotocore client, one :class:`~airflow_batch_jobs.watch.JobListing`); each later one
subscribes to its results and judges them with its own policy. The loop polls at the shortest interval among its
subscribers, and stops when the last subscriber leaves. A subscriber with a shorter interval than the loop's cuts the
current sleep short: the next poll comes one of its intervals after it joined (or sooner, if the sleep was due
sooner), not at the end of a longer sleep begun before it came. A subscriber can also ask for a listing sooner
(:meth:`SharedPoll.request_listing`: a job state-change event suggests its verdict is in): the sleep is cut short the
same way, and the first poll to begin after the request answers it. A subscriber's interval is a :class:`Cadence` it
may change while subscribed (:meth:`SharedPoll.retime`: a wait reading job events stretches its safety net while the
events prove right, and shortens it again when they do not). Nothing here is serialized: each trigger still
carries everything it needs, so a restarted triggerer simply forms the loops again.

A failed poll is asked again at the normal interval, as the sensor pokes: never sooner (a poll that keeps failing
costs one poll per interval, no tight loop), and never later (a stretched interval made the verdict come several
intervals after the last job finished). Backing off is done per call, inside a poll, by botocore's retry mode
(``standard`` unless the connection sets one: throttling and 5xx retried with capped exponential backoff and
jitter), where it costs seconds, not poll intervals.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import random
import time
import weakref
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
    from airflow_batch_jobs.watch import JobListing

PollResult = list[dict[str, Any]] | Exception


def shared_task(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task serving every subscriber (a poll loop, an event consumer), in a context of its own: Airflow routes a
    trigger's log by its task's context, and what the loop logs is not the log of the trigger that happened to start
    it."""
    return contextvars.Context().run(asyncio.ensure_future, coroutine)


def poll_key(*parts: Any) -> str:
    """A stable key for the question being polled (connection arguments, query, listing options)."""
    return json.dumps(parts, sort_keys=True, default=str)


class ClientPool:
    """One aiobotocore client per connection per event loop, shared by every poll loop using that connection:
    a client costs about a mebibyte, and a thousand waits on different queries need not hold a thousand."""

    _loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ClientPool]] = weakref.WeakKeyDictionary()

    def __init__(self) -> None:
        self.users = 0
        self.client: Any = None
        self._context: Any = None
        self._ready = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def lease(cls, connection: str, hook: BatchJobsHook) -> AsyncIterator[Any]:
        pools = cls._loops.setdefault(asyncio.get_running_loop(), {})
        pool = pools.setdefault(connection, cls())
        pool.users += 1
        try:
            async with pool._ready:
                if pool.client is None:
                    context = await hook.get_async_conn()
                    pool.client = await context.__aenter__()
                    pool._context = context
            yield pool.client
        finally:
            pool.users -= 1
            if pool.users == 0:
                pools.pop(connection, None)
                if pool._context is not None:
                    context, pool._context, pool.client = pool._context, None, None
                    await asyncio.shield(context.__aexit__(None, None, None))


class Cadence:
    """How often one subscriber wants the poll to list, in seconds; :meth:`SharedPoll.retime` changes it."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class SharedPoll:
    """The poll loop for one key in one event loop, and the results it publishes."""

    sleep = staticmethod(asyncio.sleep)  # tests swap in an emulated clock
    clock = staticmethod(time.monotonic)  # when a cut-short sleep was due (tests swap it with the sleep)
    _loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedPoll]] = weakref.WeakKeyDictionary()

    def __init__(self, key: str, connection: str, hook: BatchJobsHook, listing: JobListing) -> None:
        self.key = key
        self.connection = connection
        self.hook = hook
        self.listing = listing
        self.client: Any = None
        self.cadences: list[Cadence] = []  # one a subscriber
        self.version = 0
        self.result: PollResult = []
        self.errors = 0  # failed polls in a row
        self.polls = 0
        self.begun = 0  # polls begun (a client that could not be made counts as one)
        self._numbers: dict[int, int] = {}  # result version -> the poll that gave it (the last few)
        self._requested: float | None = None  # a subscriber asked for a poll to begin by then (clock())
        self._wakes_at = float("inf")  # when the current sleep ends (clock())
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._napping = False  # the loop is in its sleep between polls
        self._hurried = False  # ... and a subscriber with a shorter interval has cut it short

    @classmethod
    @asynccontextmanager
    async def subscribe(
        cls,
        key: str,
        connection: str,
        hook: Callable[[], BatchJobsHook],
        listing: Callable[[], JobListing],
        interval: float | Cadence,
    ) -> AsyncIterator[SharedPoll]:
        """Join (or start) the poll for ``key`` (on the client for ``connection``) for as long as the block runs,
        listing every ``interval`` seconds (a :class:`Cadence` to change it later with :meth:`retime`)."""
        polls = cls._loops.setdefault(asyncio.get_running_loop(), {})
        poll = polls.get(key)
        if poll is None:
            poll = polls[key] = cls(key, connection, hook(), listing())
        cadence = interval if isinstance(interval, Cadence) else Cadence(interval)
        sooner = bool(poll.cadences) and cadence.seconds < poll.interval
        poll.cadences.append(cadence)
        if poll._task is None:
            poll._task = shared_task(poll._run())
        elif sooner:
            poll.hurry()
        try:
            yield poll
        finally:
            poll.cadences.remove(cadence)
            if not poll.cadences:  # the last subscriber left: stop the loop and let it close its client
                polls.pop(key, None)
                poll._task.cancel()
                await asyncio.gather(poll._task, return_exceptions=True)

    @property
    def subscribers(self) -> int:
        return len(self.cadences)

    def retime(self, cadence: Cadence, seconds: float) -> None:
        """A subscriber now wants a listing every ``seconds``: a shorter interval than the loop's cuts its sleep short
        (as a subscriber joining does); a longer one takes effect from the next sleep."""
        sooner = seconds < self.interval
        cadence.seconds = seconds
        if sooner:
            self.hurry()

    async def next_result(self, after: int) -> tuple[int, PollResult]:
        """The first result published after version ``after`` (a subscriber never judges a stale one twice)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > after)
            return self.version, self.result

    def poll_number(self, version: int) -> int:
        """The poll (counted from 1, in the order they began) whose result is ``version``; 0 if too old to say."""
        return self._numbers.get(version, 0)

    async def _publish(self, result: PollResult) -> None:
        async with self._changed:
            self.version += 1
            self.result = result
            self._numbers[self.version] = self.begun  # polls run one after another: the last begun is this one
            self._numbers.pop(self.version - 32, None)
            self._changed.notify_all()

    async def _run(self) -> None:
        # The sensor judged once just before deferring, so the first poll can wait: a random part of the interval
        # spreads the polls of many loops started together (a triggerer restart) over the interval.
        await self._pause(self.interval * random.random())
        while True:  # (re)open the client: a failure to make it is a failed poll like any other
            try:
                async with ClientPool.lease(self.connection, self.hook) as client:
                    self.client = client
                    while True:
                        await self._poll_once(client)
                        await self._pause(self.next_delay)
            except Exception as err:
                self._begin()
                self.errors += 1
                await self._publish(err)
                await self._pause(self.next_delay)

    def hurry(self) -> None:
        """A subscriber with a shorter interval joined, or asked for a listing sooner: end the current sleep
        (:meth:`_pause` sleeps again, shorter)."""
        if self._napping and not self._hurried and self._task is not None:
            self._hurried = True
            self._task.cancel()

    def request_listing(self, within: float = 0.0) -> int:
        """Ask for a poll to begin within ``within`` seconds (0: now, or as soon as the one in flight has ended),
        however long the interval: a subscriber expects its verdict (a job state-change event said so) and wants a
        listing to confirm it. Requests are merged (the soonest counts) and cost nothing while a poll is due anyway;
        the first poll to begin after the request answers every request made before it (each subscriber judges every
        result, and asks again if it still needs to). Returns the number of that poll (:meth:`poll_number`): one in
        flight began before the request, and may not show what prompted it."""
        due = self.clock() + max(within, 0.0)
        if self._requested is None or due < self._requested:
            self._requested = due
            if due < self._wakes_at:
                self.hurry()
        return self.begun + 1

    def _until_requested(self, seconds: float) -> float:
        return seconds if self._requested is None else min(seconds, self._requested - self.clock())

    def _begin(self) -> None:
        """A poll begins: it answers every request made so far."""
        self.begun += 1
        self._requested = None

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less: cut short by :meth:`hurry`, the loop sleeps again until the new interval has
        passed, the first sleep was due or a requested listing is due, whichever comes first. The sleep runs in the
        loop's own task (``sleep`` is what tests replace), and only the cancel ``hurry`` asked for is taken back:
        stopping the loop still stops it."""
        due = self.clock() + seconds
        seconds = self._until_requested(seconds)
        while seconds > 0:
            self._napping = True
            self._wakes_at = self.clock() + seconds
            try:
                await self.sleep(seconds)
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not self._hurried or task is None or task.uncancel() > 0:
                    raise  # the loop is being stopped (too)
            finally:
                self._napping = self._hurried = False
            seconds = self._until_requested(min(due - self.clock(), self.interval))

    async def _poll_once(self, client: Any) -> None:
        self._begin()
        try:
            result: PollResult = await self.listing.acollect(self.hook, client)
            self.errors = 0
        except Exception as err:
            result = err
            self.errors += 1
        self.polls += 1
        await self._publish(result)

    @property
    def interval(self) -> float:
        """The shortest poll interval among the subscribers."""
        return min((cadence.seconds for cadence in self.cadences), default=60.0)

    @property
    def next_delay(self) -> float:
        """The sleep after a poll, failed or not: the interval (botocore backs off per call, inside the poll)."""
        return self.interval
