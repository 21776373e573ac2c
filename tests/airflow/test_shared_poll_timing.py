"""When a shared poll sleeps: a trigger that joins a poll loop running at a longer interval cuts its current sleep
short, so its first verdict comes within its own interval (a 30 s sensor joining a 600 s loop waited ten minutes).

No AWS and no wall clock: the loop's sleeps and clock are replaced by ones the test moves, and its listing counts
polls."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest

from airflow_batch_jobs.triggers.shared_poll import SharedPoll


class Client:
    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class Hook:
    async def get_async_conn(self) -> Client:
        return Client()


class Listing:
    def __init__(self) -> None:
        self.polls = 0

    async def acollect(self, hook: Any, client: Any) -> list[dict[str, Any]]:
        self.polls += 1
        return [{"jobId": f"poll-{self.polls}"}]


class Time:
    """The loop's clock and sleeps: a sleep returns at once while ``free`` lasts, then sleeps until cancelled."""

    def __init__(self, free: int) -> None:
        self.now = 0.0
        self.free = free
        self.asked: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        if self.free > 0:
            self.free -= 1
            return
        await asyncio.Event().wait()  # until the loop cancels it (or the test ends the loop)

    async def settle(self) -> None:
        """Let the loop run until it waits again (event-loop turns, no wall time)."""
        for _ in range(50):
            await asyncio.sleep(0)


@pytest.fixture
def time() -> Any:
    clock = Time(free=1)  # the first poll's stagger passes; the loop then sleeps its interval after the first poll
    with (
        mock.patch.object(SharedPoll, "sleep", staticmethod(clock.sleep)),
        mock.patch.object(SharedPoll, "clock", staticmethod(clock.clock)),
    ):
        yield clock


def subscribe(listing: Listing, interval: float) -> Any:
    return SharedPoll.subscribe("key", "connection", Hook, lambda: listing, interval)


async def test_a_shorter_interval_cuts_the_current_sleep_short(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing, 600.0) as poll:
        await time.settle()
        assert listing.polls == 1 and time.asked[-1] == 600.0  # asleep for ten minutes
        time.now = 100.0
        time.free = 1
        async with subscribe(listing, 30.0) as joined:
            assert joined is poll
            version = poll.version
            await time.settle()
            assert time.asked[-2:] == [30.0, 30.0]  # woken: the next poll 30 s after the join, then every 30 s
            assert listing.polls == 2
            assert (await poll.next_result(version - 1))[0] == version + 1


async def test_the_sleep_already_due_sooner_is_kept(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing, 600.0):
        await time.settle()
        time.now = 590.0  # 10 s of the 600 s sleep left
        async with subscribe(listing, 30.0):
            await time.settle()
            assert time.asked[-1] == pytest.approx(10.0)
            assert listing.polls == 1


async def test_an_equal_or_longer_interval_leaves_the_sleep_alone(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing, 30.0):
        await time.settle()
        asked = list(time.asked)
        async with subscribe(listing, 600.0), subscribe(listing, 30.0):
            await time.settle()
            assert time.asked == asked and listing.polls == 1


async def test_leaving_ends_the_loop_whatever_it_sleeps(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing, 600.0):
        await time.settle()
        async with subscribe(listing, 30.0):
            await time.settle()
    assert SharedPoll._loops.get(asyncio.get_running_loop()) == {}
    assert asyncio.all_tasks() == {asyncio.current_task()}  # no sleep left behind
