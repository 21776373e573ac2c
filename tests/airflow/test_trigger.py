"""The trigger's own behaviour: a failed poll is asked again at the poll interval (botocore backs off per call,
inside a poll), and one event per run."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from botocore.exceptions import ParamValidationError

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from airflow_batch_jobs.verdict_event import resolve_event
from airflow_batch_jobs.watch import JobWatch

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

EMULATOR_PROFILE = "realistic"  # the service's awkward behaviours on (tests/airflow/conftest.py)
NO_RETRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}


def trigger(**kwargs: Any) -> BatchJobsTrigger:
    return BatchJobsTrigger(
        query=JobQuery.build(job_queue="queue", job_name=kwargs.pop("job_name", "t-*")).to_dict(),
        policy=Policy.build().to_dict(),
        botocore_config=NO_RETRY,
        **kwargs,
    )


async def first_event(t: BatchJobsTrigger) -> tuple[dict[str, Any], list[float]]:
    """Run the trigger to its event (made whole as the worker makes it: its jobs read back); record the sleeps its
    poll loop asked for between polls instead of sleeping."""
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    with mock.patch.object(SharedPoll, "sleep", staticmethod(fake_sleep)):
        events = [e.payload async for e in t.run()]
    assert len(events) == 1  # exactly one event, then the generator ends
    return resolve_event(events[0], BatchJobsHook(), t.xcom_detail), sleeps[1:]  # the first sleep: the random stagger


@pytest.mark.usefixtures("batch_aws_conn")
async def test_failed_polls_are_asked_again_at_the_interval_then_the_verdict_is_right(
    batch_emulator: BatchEmulator,
) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1}]}, name="t-bad")
    batch_emulator.submit("t-ok")
    batch_emulator.submit("t-bad")
    batch_emulator.advance(120)
    batch_emulator.inject("ListJobs", "throttle", count=3)
    event, sleeps = await first_event(trigger(poll_interval=10, max_poll_errors=5))
    assert event["status"] == "failure" and event["failed"] == 1, event["message"]
    assert event["records"][0]["job_name"] == "t-bad"
    # the poll loop sleeps the plain interval after every poll, the three failed ones too (not 2x, 4x, 8x it); it
    # may have begun one more poll by the time the trigger judged the fourth
    assert len(sleeps) >= 4 and set(sleeps) == {10}


@pytest.mark.usefixtures("batch_aws_conn")
async def test_too_many_failed_polls_end_in_an_error_event(batch_emulator: BatchEmulator) -> None:
    batch_emulator.submit("t-ok")
    batch_emulator.inject("*", "server")
    event, sleeps = await first_event(trigger(poll_interval=1, max_poll_errors=3))
    assert event["status"] == "error" and "3 polls in a row failed" in event["message"]
    assert len(sleeps) >= 3 and set(sleeps) == {1}  # every failed poll asked again at the interval: no tight loop


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
    assert set(sleeps) == {5}  # the broken poll was asked again at the interval instead of judged
    assert event["status"] == "failure" and event["failed"] == 1, event["message"]
    assert len(event["records"]) == 221


@pytest.mark.usefixtures("batch_aws_conn")
async def test_the_async_poll_takes_the_same_shortcuts(batch_emulator: BatchEmulator) -> None:
    """Children by the parent's statusSummary and paging cut at created_after, on the trigger's aiobotocore path."""
    emu = batch_emulator
    for i in range(300):
        emu.submit(f"old-{i}")
    emu.advance(3600)
    start = emu.now_ms()
    emu.advance(1)
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 60}]}, name="fan")
    parent = emu.submit("fan", arrayProperties={"size": 10})
    calls_per_poll: list[int] = []

    async def emulated_sleep(seconds: float) -> None:
        calls_per_poll.append(emu.calls.get("ListJobs", 0))
        emu.reset_counters()
        emu.advance(30)
        await asyncio.sleep(0)

    t = BatchJobsTrigger(
        query=JobQuery.build(job_queue="queue", created_after=start).to_dict(),
        policy=Policy.build(include_array_children=True).to_dict(),
    )
    with mock.patch.object(SharedPoll, "sleep", staticmethod(emulated_sleep)):
        events = [e.payload async for e in t.run()]
    event = resolve_event(events[0], BatchJobsHook(), "summary")
    assert event["status"] == "success"
    assert sorted(r["job_id"] for r in event["records"]) == sorted(f"{parent}:{i}" for i in range(10))
    # per poll: one queue page (not the 4 that 300 older jobs fill) and the children's statuses that changed
    assert max(calls_per_poll[1:]) <= 3


@pytest.mark.usefixtures("batch_aws_conn")
async def test_a_bug_in_our_code_is_not_reported_as_an_aws_rejection(batch_emulator: BatchEmulator) -> None:
    batch_emulator.submit("t-ok")
    with mock.patch.object(JobWatch, "ajudge", side_effect=KeyError("jobId")):
        event, _ = await first_event(trigger())
    assert event["status"] == "error" and "rejected" not in event["message"]
    assert "KeyError" in event["message"] and "not an answer from AWS" in event["message"]
    sensor = BatchJobsSensor(task_id="wait", job_queue="queue")
    with pytest.raises(AirflowException) as err:  # retried like any task error, not failed for good
        sensor.execute_complete({"ti": mock.MagicMock()}, event)
    assert not isinstance(err.value, AirflowFailException)


@pytest.mark.usefixtures("batch_aws_conn")
async def test_a_request_botocore_refuses_to_send_ends_the_wait_at_once(batch_emulator: BatchEmulator) -> None:
    """ParamValidationError is botocore's check of the request, before sending it: it ends the wait with an error event
    (no retry can pass it), not a failed poll asked again until max_poll_errors."""
    batch_emulator.submit("t-ok")
    refused = ParamValidationError(report="Invalid type for parameter jobs[0], value: 5, type: <class 'int'>")
    with mock.patch.object(JobWatch, "ajudge", side_effect=refused):
        event, sleeps = await first_event(trigger(max_poll_errors=5))
    assert event["status"] == "error" and "botocore refused to send the request" in event["message"]
    assert "jobs[0]" in event["message"] and "polls in a row" not in event["message"] and not event.get("internal")
    assert len(sleeps) <= 1  # judged at the first poll (the loop may have begun its next sleep)
    sensor = BatchJobsSensor(task_id="wait", job_queue="queue")
    with pytest.raises(AirflowFailException, match="refused to send"):  # fails the task: Airflow's retries would too
        sensor.execute_complete({"ti": mock.MagicMock()}, event)
