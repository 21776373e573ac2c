"""One poll per (connection, query) per interval inside the triggerer, shared by every trigger waiting on it.

A hundred deferred sensors asking the same question cost the API calls of one: the first trigger to subscribe
starts a poll loop (one aiobotocore client, one :class:`~airflow_batch_jobs.watch.JobListing`); each later one
subscribes to its results and judges them with its own policy. The loop polls at the shortest interval among its
subscribers, backs off with jitter after a failed poll, and stops when the last subscriber leaves. Nothing here is
serialized: each trigger still carries everything it needs, so a restarted triggerer simply forms the loops again.
"""

from __future__ import annotations

import asyncio
import json
import random
import weakref
from collections import Counter
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.watch import is_transient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
    from airflow_batch_jobs.watch import JobListing

# Backoff after a failed poll: poll_interval * 2**errors, at most this, with +-20 % jitter.
MAX_BACKOFF_SECONDS = 600.0

PollResult = list[dict[str, Any]] | Exception


def backoff_seconds(poll_interval: float, errors: int) -> float:
    return min(poll_interval * 2**errors, MAX_BACKOFF_SECONDS) * random.uniform(0.8, 1.2)


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


class SharedPoll:
    """The poll loop for one key in one event loop, and the results it publishes."""

    sleep = staticmethod(asyncio.sleep)  # tests swap in an emulated clock
    _loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedPoll]] = weakref.WeakKeyDictionary()

    def __init__(self, key: str, connection: str, hook: BatchJobsHook, listing: JobListing) -> None:
        self.key = key
        self.connection = connection
        self.hook = hook
        self.listing = listing
        self.client: Any = None
        self.intervals: Counter[float] = Counter()
        self.version = 0
        self.result: PollResult = []
        self.errors = 0
        self.next_delay = 0.0
        self.polls = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def subscribe(
        cls,
        key: str,
        connection: str,
        hook: Callable[[], BatchJobsHook],
        listing: Callable[[], JobListing],
        interval: float,
    ) -> AsyncIterator[SharedPoll]:
        """Join (or start) the poll for ``key`` (on the client for ``connection``) for as long as the block runs."""
        polls = cls._loops.setdefault(asyncio.get_running_loop(), {})
        poll = polls.get(key)
        if poll is None:
            poll = polls[key] = cls(key, connection, hook(), listing())
        poll.intervals[interval] += 1
        if poll._task is None:
            poll._task = asyncio.ensure_future(poll._run())
        try:
            yield poll
        finally:
            poll.intervals[interval] -= 1
            if poll.intervals[interval] <= 0:
                del poll.intervals[interval]
            if not poll.intervals:  # the last subscriber left: stop the loop and let it close its client
                polls.pop(key, None)
                poll._task.cancel()
                await asyncio.gather(poll._task, return_exceptions=True)

    @property
    def subscribers(self) -> int:
        return sum(self.intervals.values())

    async def next_result(self, after: int) -> tuple[int, PollResult]:
        """The first result published after version ``after`` (a subscriber never judges a stale one twice)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > after)
            return self.version, self.result

    async def _publish(self, result: PollResult) -> None:
        async with self._changed:
            self.version += 1
            self.result = result
            self._changed.notify_all()

    async def _run(self) -> None:
        # The sensor judged once just before deferring, so the first poll can wait: a random part of the interval
        # spreads the polls of many loops started together (a triggerer restart) over the interval.
        await self.sleep(self.interval * random.random())
        while True:  # (re)open the client: a failure to make it is a failed poll like any other
            try:
                async with ClientPool.lease(self.connection, self.hook) as client:
                    self.client = client
                    while True:
                        await self._poll_once(client)
                        await self.sleep(self.next_delay)
            except Exception as err:
                self._failed(err)
                await self._publish(err)
                await self.sleep(self.next_delay)

    async def _poll_once(self, client: Any) -> None:
        try:
            result: PollResult = await self.listing.acollect(self.hook, client)
            self.errors = 0
            self.next_delay = self.interval
        except Exception as err:
            result = err
            self._failed(err)
        self.polls += 1
        await self._publish(result)

    @property
    def interval(self) -> float:
        """The shortest poll interval among the subscribers."""
        return min(self.intervals, default=60.0)

    def _failed(self, err: Exception) -> None:
        self.errors += 1
        self.next_delay = backoff_seconds(self.interval, self.errors) if is_transient(err) else self.interval
