"""A subscriber asks the shared poll for a listing sooner (SharedPoll.request_listing: an event suggests its verdict is
in): the sleep is cut short, the first poll to begin after the request answers it, and requests never make the loop
poll more than once for what it was asked at once.

No AWS and no wall clock: the loop's sleeps and clock are replaced by ones the test moves (as in
test_shared_poll_timing), and its listing counts polls; one listing can be held in flight."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from airflow_batch_jobs.triggers.shared_poll import SharedPoll

from .shared_poll_fakes import Listing, Time, on_test_time, subscribe

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def time() -> Iterator[Time]:
    with on_test_time(moves_clock=True) as clock:
        yield clock


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
