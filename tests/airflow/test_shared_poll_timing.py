"""When a shared poll sleeps: a trigger that joins a poll loop running at a longer interval cuts its current sleep
short, so its first verdict comes within its own interval (a 30 s sensor joining a 600 s loop waited ten minutes).

No AWS and no wall clock: the loop's sleeps and clock are replaced by ones the test moves, and its listing counts
polls."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from airflow_batch_jobs.triggers.shared_poll import Cadence, SharedPoll

from .shared_poll_fakes import Listing, Time, on_test_time, subscribe

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def time() -> Iterator[Time]:
    with on_test_time(moves_clock=False) as clock:
        yield clock


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


async def test_a_retimed_cadence_cuts_the_sleep_short_when_shorter_and_waits_for_the_next_sleep_when_longer(
    time: Time,
) -> None:
    """A wait reading events stretches its safety net (SharedPoll.retime) while the events prove right and shortens
    it when they do not: shorter takes effect at once, as a subscriber joining does; longer from the next sleep."""
    listing = Listing()
    cadence = Cadence(300.0)
    async with subscribe(listing, cadence) as poll:
        await time.settle()
        assert listing.polls == 1 and time.asked[-1] == 300.0
        poll.retime(cadence, 600.0)
        await time.settle()
        assert time.asked[-1] == 300.0 and listing.polls == 1  # the sleep under way goes on
        assert poll.interval == 600.0
        time.now = 100.0
        time.free = 1
        poll.retime(cadence, 30.0)
        await time.settle()
        assert time.asked[-2:] == [30.0, 30.0]  # woken: the next poll 30 s later, then every 30 s
        assert listing.polls == 2
    assert SharedPoll._loops.get(asyncio.get_running_loop()) == {}  # the retimed cadence left with its subscriber
