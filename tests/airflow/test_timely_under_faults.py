"""Timely under faults (#13): a failed poll costs one poll interval on the deferrable path as when poking, never a
stretched interval. With 30 % of calls throttled the trigger's verdict came 195 s after the last job finished (it
doubled its whole poll interval after each failed poll) against 24 s when poking. Backing off is botocore's job, per
call inside a poll; the poll loop asks again at the normal interval, so a poll that keeps failing is not retried in a
tight loop either.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from botocore.exceptions import EndpointConnectionError

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import SharedPoll

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

EMULATOR_PROFILE = "realistic"  # the service's awkward behaviours on (tests/airflow/conftest.py)
NO_RETRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}
INTERVAL = 30.0


def trigger(**kwargs: Any) -> BatchJobsTrigger:
    return BatchJobsTrigger(
        query=JobQuery.build(job_queue="queue", job_name="t-*").to_dict(),
        policy=Policy.build().to_dict(),
        poll_interval=INTERVAL,
        botocore_config=NO_RETRY,
        **kwargs,
    )


async def run_to_event(emu: BatchEmulator, t: BatchJobsTrigger) -> tuple[dict[str, Any], list[float], list[int]]:
    """Run the trigger to its event on the emulated clock: the sleeps its poll loop asked for (after the first, the
    random stagger) and the emulated time of each poll."""
    sleeps: list[float] = []
    polled_at: list[int] = []

    async def emulated_sleep(seconds: float) -> None:
        if sleeps or polled_at:
            polled_at.append(emu.now_ms())
        sleeps.append(seconds)
        emu.advance(seconds)
        await asyncio.sleep(0)

    with mock.patch.object(SharedPoll, "sleep", staticmethod(emulated_sleep)):
        events = [e.payload async for e in t.run()]
    assert len(events) == 1
    return events[0], sleeps[1:], polled_at


@pytest.mark.usefixtures("batch_aws_conn")
async def test_failed_polls_after_the_last_job_cost_one_interval_each(batch_emulator: BatchEmulator) -> None:
    emu = batch_emulator
    emu.add_outcome({"attempts": [{"exit_code": 1, "duration": 60}]}, name="t-bad")
    emu.submit("t-ok")
    emu.submit("t-bad")
    emu.advance(300)  # both finished
    done_at = emu.now_ms()
    emu.inject("ListJobs", "throttle", count=3)  # the next three polls fail (no botocore retries here)
    event, sleeps, polled_at = await run_to_event(emu, trigger(max_poll_errors=5))
    assert event["status"] == "failure" and event["failed"] == 1, event["message"]
    assert sleeps[:3] == [INTERVAL] * 3  # each failed poll asked again at the interval, not 2x, 4x, 8x it
    verdict_at = polled_at[3]  # the fourth poll, the first answered
    assert (verdict_at - done_at) / 1000 <= INTERVAL * (1 + 3)  # the stagger, then one interval per failed poll


@pytest.mark.usefixtures("batch_aws_conn")
async def test_a_poll_that_keeps_failing_is_asked_again_at_the_interval_never_sooner(
    batch_emulator: BatchEmulator,
) -> None:
    batch_emulator.submit("t-ok")
    batch_emulator.inject("*", "server")
    event, sleeps, _ = await run_to_event(batch_emulator, trigger(max_poll_errors=4))
    assert event["status"] == "error" and "4 polls in a row failed" in event["message"]
    assert len(sleeps) >= 3 and set(sleeps) == {INTERVAL}


@pytest.mark.usefixtures("batch_aws_conn")
async def test_a_client_that_cannot_be_made_is_a_failed_poll_asked_again_at_the_interval(
    batch_emulator: BatchEmulator,
) -> None:
    batch_emulator.submit("t-ok")
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    with mock.patch.object(BatchJobsHook, "get_async_conn", side_effect=unreachable):
        event, sleeps, _ = await run_to_event(batch_emulator, trigger(max_poll_errors=3))
    assert event["status"] == "error" and "3 polls in a row failed" in event["message"]
    assert len(sleeps) >= 2 and set(sleeps) == {INTERVAL}  # no tight loop, no stretched interval
