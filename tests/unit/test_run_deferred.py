"""``run_deferred``: a deferrable sensor run in a test as Airflow runs it (execute, trigger, resume), on the emulator's
clock, its trigger closed as the triggerer closes it."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any
from unittest import mock

import aiohttp
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import run_deferred

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_batch_jobs.testing import BatchEmulator

pytestmark = pytest.mark.usefixtures("batch_aws_conn")


def sensor(**kwargs: Any) -> BatchJobsSensor:
    return BatchJobsSensor(task_id="wait", job_queue="queue", job_name="etl-*", deferrable=True, **kwargs)


@pytest.fixture
def sessions() -> Iterator[list[aiohttp.ClientSession]]:
    """Every aiohttp session (aiobotocore's connection pool) opened meanwhile."""
    opened: list[aiohttp.ClientSession] = []
    init = aiohttp.ClientSession.__init__

    def recording_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        init(self, *args, **kwargs)

    with mock.patch.object(aiohttp.ClientSession, "__init__", recording_init):
        yield opened


def test_the_trigger_waits_on_the_emulated_clock_and_is_closed(
    batch_emulator: BatchEmulator, sessions: list[aiohttp.ClientSession]
) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 0, "duration": 600}]}, name="etl-*")
    batch_emulator.submit("etl-extract")
    started = batch_emulator.now_ms()
    records = run_deferred(sensor(poke_interval=60), batch_emulator)
    assert [(r["job_name"], r["status"]) for r in records] == [("etl-extract", "SUCCEEDED")]
    waited_s = (batch_emulator.now_ms() - started) / 1000
    assert 600 <= waited_s <= 600 + 3 * 60  # the job's run, plus at most the stagger and a poll interval or two
    assert sessions and all(s.closed for s in sessions)  # the trigger's client went with it


def test_a_failure_found_by_the_trigger_fails_the_task_without_a_ti_in_the_context(
    batch_emulator: BatchEmulator,
) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 2, "reason": "AccessDenied", "duration": 60}]}, name="etl-*")
    batch_emulator.submit("etl-publish")
    with pytest.raises(AirflowFailException, match=r"etl-publish .*\n.*exit code 2, reason 'AccessDenied'"):
        run_deferred(sensor(poke_interval=30), batch_emulator)


def test_the_context_ti_gets_the_records_of_a_failed_wait(batch_emulator: BatchEmulator) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 2, "duration": 300}]}, name="etl-*")
    batch_emulator.submit("etl-publish")
    ti = mock.MagicMock()
    with pytest.raises(AirflowFailException):
        run_deferred(sensor(poke_interval=30), batch_emulator, {"ti": ti})
    (pushed,) = [c.kwargs["value"] for c in ti.xcom_push.call_args_list if c.kwargs["key"] == "return_value"]
    assert [r["job_name"] for r in pushed] == ["etl-publish"]


def test_jobs_already_finished_are_judged_without_deferring(batch_emulator: BatchEmulator) -> None:
    batch_emulator.submit("etl-extract")
    batch_emulator.advance(120)
    before = batch_emulator.now_ms()
    records = run_deferred(sensor(), batch_emulator)
    assert [r["status"] for r in records] == ["SUCCEEDED"]
    assert batch_emulator.now_ms() == before  # no trigger ran: the clock did not move


def test_a_deferral_past_the_sensor_timeout_times_out_in_emulated_time(batch_emulator: BatchEmulator) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 0, "duration": 3600}]}, name="etl-*")
    batch_emulator.submit("etl-extract")
    started, wall_started = batch_emulator.now_ms(), time.monotonic()
    with pytest.raises(AirflowSensorTimeout):
        run_deferred(sensor(poke_interval=60, timeout=600), batch_emulator)
    waited_s, wall_s = (batch_emulator.now_ms() - started) / 1000, time.monotonic() - wall_started
    # the sensor gives the trigger what is left of its timeout after the first poke, which took wall time
    assert 600 - wall_s - 1 <= waited_s <= 600
    with pytest.raises(AirflowSkipException):  # soft_fail: a skip, as in Airflow
        run_deferred(sensor(poke_interval=60, timeout=600, soft_fail=True), batch_emulator)


def test_the_sensor_reads_the_emulated_clock(batch_emulator: BatchEmulator) -> None:
    """runnable_timeout counts emulated seconds: a job stuck in RUNNABLE fails the wait after 10 emulated minutes
    (on the wall clock, which hardly moves here, it would not fire before the sensor's timeout)."""
    batch_emulator.add_outcome({"stuck_runnable": True}, name="etl-*")
    batch_emulator.submit("etl-extract")
    with pytest.raises(AirflowFailException, match="RUNNABLE"):
        run_deferred(sensor(poke_interval=60, runnable_timeout=600, timeout=3600), batch_emulator)


def test_a_sensor_that_does_not_defer_is_refused_with_the_argument_to_change(batch_emulator: BatchEmulator) -> None:
    with pytest.raises(ValueError, match="deferrable=False: pass deferrable=True"):
        run_deferred(BatchJobsSensor(task_id="wait", job_queue="queue", deferrable=False), batch_emulator)


def test_the_clock_waits_for_the_trigger_to_judge_however_slow_its_calls(batch_emulator: BatchEmulator) -> None:
    """The poll loop's next emulated sleep waits until the trigger has judged the last listing: with a DescribeJobs
    answer that takes real time (a loaded machine), the loop used to sleep on meanwhile, moving the clock intervals
    past the listing the trigger was judging (a test of the unknown-id bound waited 440 s where 320 were due)."""
    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook

    batch_emulator.add_outcome({"attempts": [{"exit_code": 0, "duration": 600}]}, name="etl-*")
    batch_emulator.submit("etl-extract")
    started = batch_emulator.now_ms()
    describe = BatchJobsHook.adescribe_jobs

    async def slow_describe(hook: BatchJobsHook, client: Any, job_ids: Any) -> Any:
        await asyncio.sleep(0.5)  # real time: the emulated sleeps of the loop would not wait for it
        return await describe(hook, client, job_ids)

    with mock.patch.object(BatchJobsHook, "adescribe_jobs", slow_describe):
        records = run_deferred(sensor(poke_interval=60), batch_emulator)
    assert [r["status"] for r in records] == ["SUCCEEDED"]
    assert (batch_emulator.now_ms() - started) / 1000 <= 600 + 3 * 60
