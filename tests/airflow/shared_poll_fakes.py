"""What the shared-poll tests run a :class:`SharedPoll` loop on: no AWS and no wall clock. The loop's sleeps and
clock are replaced by ones the test moves (:class:`Time`, :func:`on_test_time`), and its listing counts polls; one
listing can be held in flight."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any
from unittest import mock

from airflow_batch_jobs.triggers.shared_poll import Cadence, SharedPoll

if TYPE_CHECKING:
    from collections.abc import Iterator


class Client:
    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class Hook:
    async def get_async_conn(self) -> Client:
        return Client()


class Listing:
    """Counts polls; ``hold`` keeps the next listing in flight until released."""

    def __init__(self) -> None:
        self.polls = 0
        self.hold: asyncio.Event | None = None

    async def acollect(self, hook: Any, client: Any) -> list[dict[str, Any]]:
        self.polls += 1
        if self.hold is not None:
            await self.hold.wait()
        return [{"jobId": f"poll-{self.polls}"}]


class Time:
    """The loop's clock and sleeps: a sleep returns at once while ``free`` lasts (moving the clock on if
    ``moves_clock``), then sleeps until cancelled."""

    def __init__(self, free: int, *, moves_clock: bool) -> None:
        self.now = 0.0
        self.free = free
        self.moves_clock = moves_clock
        self.asked: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        if self.free > 0:
            self.free -= 1
            if self.moves_clock:
                self.now += seconds
            return
        await asyncio.Event().wait()  # until the loop cancels it (or the test ends the loop)

    async def settle(self) -> None:
        """Let the loop run until it waits again (event-loop turns, no wall time)."""
        for _ in range(50):
            await asyncio.sleep(0)


@contextlib.contextmanager
def on_test_time(*, moves_clock: bool) -> Iterator[Time]:
    """The first poll's stagger passes at once; the loop then sleeps its interval after the first poll."""
    time = Time(free=1, moves_clock=moves_clock)
    with (
        mock.patch.object(SharedPoll, "sleep", staticmethod(time.sleep)),
        mock.patch.object(SharedPoll, "clock", staticmethod(time.clock)),
    ):
        yield time


def subscribe(listing: Listing, interval: float | Cadence = 600.0) -> Any:
    return SharedPoll.subscribe("key", "connection", Hook, lambda: listing, interval)  # type: ignore[arg-type]
