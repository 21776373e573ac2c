"""The trigger's own behaviour: backoff with jitter after failed polls, its cap, and one event per run."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import pytest

from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.triggers import batch_jobs as trigger_module
from airflow_batch_jobs.triggers.batch_jobs import MAX_BACKOFF_SECONDS, BatchJobsTrigger, backoff_seconds

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

NO_RETRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    random.seed(7)
    for errors in range(1, 12):
        base = min(10 * 2**errors, MAX_BACKOFF_SECONDS)
        delays = [backoff_seconds(10, errors) for _ in range(50)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert len({round(d, 6) for d in delays}) > 40  # jittered: triggers that failed together do not retry together
    assert max(backoff_seconds(10, 30) for _ in range(100)) <= 1.2 * MAX_BACKOFF_SECONDS


def trigger(**kwargs: Any) -> BatchJobsTrigger:
    return BatchJobsTrigger(
        query=JobQuery.build(job_queue="queue", job_name=kwargs.pop("job_name", "t-*")).to_dict(),
        policy=Policy.build().to_dict(),
        botocore_config=NO_RETRY,
        **kwargs,
    )


async def first_event(t: BatchJobsTrigger) -> tuple[dict[str, Any], list[float]]:
    """Run the trigger to its event; record the sleeps it asked for instead of sleeping."""
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await real_sleep(0)

    original = trigger_module.asyncio.sleep
    trigger_module.asyncio.sleep = fake_sleep  # type: ignore[assignment]
    try:
        events = [e.payload async for e in t.run()]
    finally:
        trigger_module.asyncio.sleep = original  # type: ignore[assignment]
    assert len(events) == 1  # exactly one event, then the generator ends
    return events[0], sleeps


@pytest.mark.usefixtures("batch_aws_conn")
async def test_failed_polls_back_off_then_the_verdict_is_right(batch_emulator: BatchEmulator) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1}]}, name="t-bad")
    batch_emulator.submit("t-ok")
    batch_emulator.submit("t-bad")
    batch_emulator.advance(120)
    batch_emulator.inject("ListJobs", "throttle", count=3)
    event, sleeps = await first_event(trigger(poll_interval=10, max_poll_errors=5))
    assert event["status"] == "failure" and event["failed"] == 1
    assert event["records"][0]["job_name"] == "t-bad"
    assert len(sleeps) == 3  # three throttled polls, each followed by a backoff, then the verdict
    for errors, delay in enumerate(sleeps, start=1):
        assert 0.8 * 10 * 2**errors <= delay <= 1.2 * 10 * 2**errors


@pytest.mark.usefixtures("batch_aws_conn")
async def test_too_many_failed_polls_end_in_an_error_event(batch_emulator: BatchEmulator) -> None:
    batch_emulator.submit("t-ok")
    batch_emulator.inject("*", "server")
    event, sleeps = await first_event(trigger(poll_interval=1, max_poll_errors=3))
    assert event["status"] == "error" and "3 polls in a row failed" in event["message"]
    assert len(sleeps) == 2


@pytest.mark.usefixtures("batch_aws_conn")
async def test_a_page_failing_mid_listing_gives_no_verdict(batch_emulator: BatchEmulator) -> None:
    """Page 1 holds only successes; the failure is on page 3. Losing page 2 must not produce a success."""
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1}]}, name="t-bad")
    batch_emulator.submit("t-bad")  # oldest: last page for a newest-first listing
    for i in range(220):
        batch_emulator.submit(f"t-{i}")
    batch_emulator.advance(120)
    batch_emulator.inject("ListJobs", "server", skip=1, count=1)  # the second page of the first poll fails
    event, sleeps = await first_event(trigger(poll_interval=5, max_poll_errors=3))
    assert len(sleeps) == 1  # the broken poll asked again instead of judging 100 jobs
    assert event["status"] == "failure" and event["failed"] == 1
    assert len(event["records"]) == 221
