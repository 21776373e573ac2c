"""A subscriber asks the shared poll for a listing sooner (SharedPoll.request_listing: an event suggests its verdict is
in): the sleep is cut short, the first poll to begin after the request answers it, and requests never make the loop
poll more than once for what it was asked at once.

No AWS and no wall clock: the loop's sleeps and clock are replaced by ones the test moves (as in
test_shared_poll_timing), and its listing counts polls; one listing can be held in flight."""

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
            self.now += seconds
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


def subscribe(listing: Listing, interval: float = 600.0) -> Any:
    return SharedPoll.subscribe("key", "connection", Hook, lambda: listing, interval)  # type: ignore[arg-type,return-value]


async def test_a_request_cuts_the_sleep_short_and_the_next_poll_answers_it(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing) as poll:
        await time.settle()
        assert listing.polls == 1 and time.asked[-1] == 600.0  # asleep for the (safety-net) interval
        version = poll.version
        time.now += 7.0
        ticket = poll.request_listing()
        await time.settle()
        assert listing.polls == 2  # at once, not 593 s later
        assert poll.poll_number(poll.version) == ticket == 2
        assert time.asked[-1] == 600.0  # then the interval again: a request is answered once
        got_version, result = await poll.next_result(version)
        assert got_version == version + 1 and result == [{"jobId": "poll-2"}]


async def test_a_request_within_some_seconds_sleeps_only_that_long(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing) as poll:
        await time.settle()
        poll.request_listing(within=4.0)
        await time.settle()
        assert time.asked[-1] == pytest.approx(4.0) and listing.polls == 1
        time.free = 1  # the 4 s pass
        poll.hurry()  # (the test's sleep only returns when cut short; let the 4 s sleep end)
        await time.settle()
        assert listing.polls == 2


async def test_a_request_due_later_than_the_next_poll_changes_nothing(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing, 30.0) as poll:
        await time.settle()
        asked = list(time.asked)
        time.now += 25.0  # 5 s of the 30 s sleep left
        poll.request_listing(within=20.0)
        await time.settle()
        assert time.asked == asked and listing.polls == 1  # the sleep was not even cut


async def test_requests_made_together_cost_one_poll(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing) as poll:
        await time.settle()
        tickets = {poll.request_listing(), poll.request_listing(), poll.request_listing(within=3.0)}
        await time.settle()
        assert tickets == {2} and listing.polls == 2
        assert time.asked[-1] == 600.0  # every request was answered by poll 2


async def test_a_request_during_a_poll_in_flight_gets_a_poll_begun_after_it(time: Time) -> None:
    """The listing in flight began before the event that prompted the request: it may not show it."""
    listing = Listing()
    async with subscribe(listing) as poll:
        await time.settle()
        listing.hold = asyncio.Event()
        poll.request_listing()
        await time.settle()
        assert listing.polls == 2  # poll 2 in flight
        ticket = poll.request_listing()  # e.g. the last job's event arrives now
        assert ticket == 3
        listing.hold.set()
        listing.hold = None
        await time.settle()
        assert listing.polls == 3 and poll.poll_number(poll.version) == 3
        assert time.asked[-1] == 600.0  # and no more


async def test_leaving_ends_the_loop_with_a_request_pending(time: Time) -> None:
    listing = Listing()
    async with subscribe(listing) as poll:
        await time.settle()
        listing.hold = asyncio.Event()
        poll.request_listing()
        await time.settle()
        poll.request_listing()  # pending behind the poll in flight
    assert SharedPoll._loops.get(asyncio.get_running_loop()) == {}
    assert asyncio.all_tasks() == {asyncio.current_task()}
