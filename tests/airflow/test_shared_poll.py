"""K deferred sensors asking the same question share one poll per interval in the triggerer; each still judges with
its own policy, and triggers that come and go (or a restarted triggerer) change nothing but the sharing."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import ClientPool, SharedPoll

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

EMULATOR_PROFILE = "realistic"  # the service's awkward behaviours on (tests/airflow/conftest.py)
INTERVAL = 30.0


def trigger(name: str = "share-*", **policy: Any) -> BatchJobsTrigger:
    return BatchJobsTrigger(
        query=JobQuery.build(job_queue="queue", job_name=name).to_dict(),
        policy=Policy.build(**policy).to_dict(),
        poll_interval=INTERVAL,
    )


class EmulatedTime:
    """The poll loops' sleeps move the emulator's clock; counts ListJobs per poll."""

    def __init__(self, emu: BatchEmulator) -> None:
        self.emu = emu
        self.polls = 0

    async def sleep(self, seconds: float) -> None:
        self.polls += 1
        self.emu.advance(seconds)
        await asyncio.sleep(0)


async def events_of(triggers: list[BatchJobsTrigger]) -> list[dict[str, Any]]:
    """Run each trigger to its end, as Airflow's triggerer does; each yields exactly one event."""

    async def only_event(t: BatchJobsTrigger) -> dict[str, Any]:
        events = [event.payload async for event in t.run()]
        assert len(events) == 1
        return events[0]

    return list(await asyncio.gather(*(only_event(t) for t in triggers)))


@pytest.mark.usefixtures("batch_aws_conn")
async def test_k_triggers_cost_one_poll_per_interval(batch_emulator: BatchEmulator) -> None:
    for i in range(250):
        attempt = {"duration": 60 + i, "exit_code": 3 if i == 3 else 0}
        batch_emulator.script_job(batch_emulator.submit(f"share-{i}"), {"attempts": [attempt]})
    clock = EmulatedTime(batch_emulator)
    k = 100
    triggers = [trigger(fail_fast=False, skip_exit_codes=[3] if i % 2 else []) for i in range(k)]
    with mock.patch.object(SharedPoll, "sleep", staticmethod(clock.sleep)):
        events = await events_of(triggers)
    assert {e["status"] for e in events[0::2]} == {"failure"}  # each trigger judged with its own policy
    assert {e["status"] for e in events[1::2]} == {"skip"}
    assert all(len(e["records"]) == 250 for e in events)
    # 250 jobs = 3 pages per poll for all 100 triggers (the loop may have begun one more poll as the verdict came)
    assert batch_emulator.calls["ListJobs"] <= 3 * (clock.polls + 1)
    assert batch_emulator.calls["DescribeJobs"] <= 3 + 1  # each finished job described once for everyone
    assert SharedPoll._loops.get(asyncio.get_running_loop()) == {}  # the loop stopped with its last subscriber
    assert ClientPool._loops.get(asyncio.get_running_loop()) == {}
    assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left running: the client is closed


@pytest.mark.usefixtures("batch_aws_conn")
async def test_triggers_come_and_go_and_survive_a_restart(batch_emulator: BatchEmulator) -> None:
    for i in range(20):
        batch_emulator.script_job(batch_emulator.submit(f"share-{i}"), {"attempts": [{"duration": 300}]})
    clock = EmulatedTime(batch_emulator)
    with mock.patch.object(SharedPoll, "sleep", staticmethod(clock.sleep)):
        first, leaving = trigger(), trigger()
        stay = asyncio.ensure_future(anext(first.run()))
        leave = asyncio.ensure_future(anext(leaving.run()))
        while clock.polls < 2:
            await asyncio.sleep(0.01)
        leave.cancel()  # a trigger goes away (its task was cancelled or the sensor timed out)
        await asyncio.gather(leave, return_exceptions=True)
        late = asyncio.ensure_future(anext(trigger().run()))  # one joins mid-wait
        other = asyncio.ensure_future(anext(trigger("other-*", min_jobs=0).run()))  # a different question
        results = [(await t).payload for t in (stay, late, other)]
        assert [r["status"] for r in results] == ["success", "success", "success"]
        assert len(results[0]["records"]) == len(results[1]["records"]) == 20
        # a restarted triggerer: rebuilt from serialized kwargs in a fresh event loop, same verdict
    rebuilt = BatchJobsTrigger(**json.loads(json.dumps(first.serialize()[1])))
    assert (await events_of([rebuilt]))[0]["status"] == "success"
