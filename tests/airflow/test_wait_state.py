"""State that must outlive an operator instance (issue #13, section 3).

Reschedule mode builds a new sensor for every try, and a restarted triggerer rebuilds the trigger from its kwargs. What
one instance learned must reach the next: the failed jobs it saw (a finished job ages out of ListJobs and
DescribeJobs: the emulator's ``retention_seconds``), the poll errors in a row (``max_poll_errors``) and when each
RUNNABLE job's wait began (``runnable_timeout``). Where it cannot (no ``task_state_store``: Airflow < 3.3; a rebuilt
trigger that starts longer after the deferral than the service is assumed to keep finished jobs), a success the
instance cannot prove is refused, never given.

The store is a fake with ``get`` / ``set`` as the Task SDK's ``TaskStateStoreAccessor`` has them; each try gets a new
sensor, as in Airflow. The waits' clocks are the emulator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, PokeReturnValue, TaskDeferred

from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import SharedPoll

if TYPE_CHECKING:
    from collections.abc import Iterator

from tests.fake_task_state_store import FakeTaskStateStore

RETENTION_S = 120  # how long the emulator keeps finished jobs in these tests
NO_RETRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}
NOT_PROVEN = "No verdict can be proven"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchEmulator]:
    """An emulator that keeps finished jobs for ``RETENTION_S``; the waits' clocks are its clock."""
    with BatchEmulator(profile="realistic", retention_seconds=RETENTION_S) as emulator:
        emulator.setup()
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emulator.airflow_connection())
        monkeypatch.setattr("airflow_batch_jobs.watch.wall_clock_ms", emulator.now_ms)
        yield emulator


def assume_retention(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The provider's assumption about how long the service keeps finished jobs, set to the emulator's."""
    monkeypatch.setattr("airflow_batch_jobs.wait_state.RETENTION_MIN_S", seconds)


class Tries:
    """The contexts Airflow gives a reschedule-mode sensor's tries: the same task instance, its try number and round
    (``max_tries - retries + 1``: a retry stays in it, a clear starts another), the reschedules so far, the first try's
    start, and the task_state_store (``None``: an Airflow without one)."""

    def __init__(self, emu: BatchEmulator, store: FakeTaskStateStore | None) -> None:
        self.emu, self.store = emu, store
        self.try_number, self.max_tries, self.retries = 1, 1, 1  # a task with retries=1, in its first try
        self.count = 0
        self.first: dt.datetime | None = None

    def context(self) -> dict[str, Any]:
        now = dt.datetime.fromtimestamp(self.emu.now_ms() / 1000, tz=dt.UTC)
        self.first = self.first or now
        first, tries = self.first, self.count
        ti = mock.MagicMock()
        ti.try_number, ti.max_tries, ti.task.retries = self.try_number, self.max_tries, self.retries
        ti.pushed = {}
        ti.xcom_push.side_effect = lambda key, value: ti.pushed.__setitem__(key, value)
        ti.get_first_reschedule_date.side_effect = lambda ctx: first if tries else None
        ctx: dict[str, Any] = {"ti": ti, "task_reschedule_count": tries}
        if self.store is not None:
            ctx["task_state_store"] = self.store
        self.count += 1
        return ctx

    def retry(self) -> None:
        """The try failed and Airflow retries it: the next try number, in the same round; no reschedule yet."""
        self.try_number += 1
        self.count = 0

    def clear(self) -> None:
        """Someone clears the task: a new round of tries (Airflow sets max_tries to try_number + retries)."""
        self.max_tries = self.try_number + self.retries
        self.try_number += 1
        self.count = 0
        self.first = None

    def poke(self, **kwargs: Any) -> bool | PokeReturnValue:
        """One try: a new sensor, as Airflow builds for every reschedule-mode try."""
        return sensor(mode="reschedule", **kwargs).poke(self.context())


def sensor(**kwargs: Any) -> BatchJobsSensor:
    kwargs.setdefault("job_queue", "queue")
    kwargs.setdefault("job_name", "etl-*")
    return BatchJobsSensor(task_id="wait", poke_interval=60, botocore_config=NO_RETRY, **kwargs)


def bad_then_long(
    emu: BatchEmulator, *, bad_after: float = 10, long_for: float = 900, bad_code: int = 1
) -> tuple[str, str]:
    """``etl-bad`` ends after ``bad_after`` s of running with ``bad_code`` (a failure unless 0); ``etl-long``
    succeeds after ``long_for`` s. The emulator keeps each for ``RETENTION_S`` once finished."""
    emu.add_outcome({"attempts": [{"exit_code": bad_code, "reason": "boom", "duration": bad_after}]}, name="etl-bad")
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": long_for}]}, name="etl-long")
    return emu.submit("etl-bad"), emu.submit("etl-long")


def failed(emu: BatchEmulator, job_id: str) -> bool:
    return any(j["status"] == "FAILED" for j in emu.client().describe_jobs(jobs=[job_id])["jobs"])


def aged_out(emu: BatchEmulator, job_id: str) -> bool:
    return not emu.client().describe_jobs(jobs=[job_id])["jobs"]


# -- reschedule mode, with a task_state_store (Airflow >= 3.3) ------------------------------------------------------
def test_reschedule_remembers_a_failed_job_that_aged_out_between_tries(emu: BatchEmulator) -> None:
    bad, _ = bad_then_long(emu)
    emu.advance(60)
    assert failed(emu, bad)
    tries = Tries(emu, FakeTaskStateStore())
    assert tries.poke(fail_fast=False) is False  # etl-bad failed, etl-long runs: wait for it (fail_fast=False)
    emu.advance(900)
    assert aged_out(emu, bad)
    with pytest.raises(AirflowFailException) as err:  # before: SUCCESS on etl-long alone
        tries.poke(fail_fast=False)
    assert "1 of 2 AWS Batch job(s) failed" in str(err.value) and f"etl-bad ({bad}): FAILED" in str(err.value)


def test_reschedule_remembers_a_tolerated_failure_and_a_skip_exit_code(emu: BatchEmulator) -> None:
    """A tolerated failure keeps counting against max_failed_jobs, a skip exit code keeps the verdict a skip."""
    emu.add_outcome({"attempts": [{"exit_code": 3, "duration": 5}]}, name="etl-nodata")
    bad, _ = bad_then_long(emu)
    emu.submit("etl-nodata")
    emu.advance(60)
    tries = Tries(emu, FakeTaskStateStore())
    policy = {"max_failed_jobs": 1, "skip_exit_codes": [3]}
    assert tries.poke(**policy) is False
    emu.advance(900)
    assert aged_out(emu, bad)
    from airflow.providers.common.compat.sdk import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="skip exit code"):  # before: SUCCESS
        tries.poke(**policy)


def test_reschedule_counts_poll_errors_in_a_row_across_tries(emu: BatchEmulator) -> None:
    emu.submit("etl-a")
    emu.inject("ListJobs", "server")
    tries = Tries(emu, FakeTaskStateStore())
    assert tries.poke(max_poll_errors=3) is False
    assert tries.poke(max_poll_errors=3) is False
    with pytest.raises(AirflowFailException, match="3 polls in a row failed"):  # before: never
        tries.poke(max_poll_errors=3)


def test_reschedule_poll_errors_in_a_row_start_again_after_a_good_poll(emu: BatchEmulator) -> None:
    emu.submit("etl-a")
    tries = Tries(emu, FakeTaskStateStore())
    emu.inject("ListJobs", "server", count=2)
    assert tries.poke(max_poll_errors=3) is False
    assert tries.poke(max_poll_errors=3) is False
    assert tries.poke(max_poll_errors=3) is False  # a good poll: the count starts again
    emu.inject("ListJobs", "server", count=2)
    assert tries.poke(max_poll_errors=3) is False
    assert tries.poke(max_poll_errors=3) is False


def test_reschedule_runnable_timeout_counts_from_the_try_that_first_saw_it(emu: BatchEmulator) -> None:
    emu.add_outcome({"stuck_runnable": True}, name="etl-stuck")
    emu.submit("etl-stuck")
    emu.advance(10)
    tries = Tries(emu, FakeTaskStateStore())
    with pytest.raises(AirflowFailException, match="RUNNABLE for more than 600 s"):  # before: never
        for _ in range(5):
            assert tries.poke(runnable_timeout=600) is False
            emu.advance(300)
    assert tries.count == 4  # at 0, 300, 600 s waiting; at 900 s past the timeout


@pytest.mark.slow  # a 2,000-child array judged child by child: minutes on a loaded machine
def test_reschedule_keeps_what_it_stores_small_and_json_native(emu: BatchEmulator) -> None:
    """A 2,000-child array with 500 failed children (tolerated) and the rest running: a few hundred bytes."""
    emu.add_outcome({"attempts": [{"exit_code": 1, "duration": 5}]}, name="etl-fan", indices=range(500))
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 900}]}, name="etl-fan")
    emu.submit("etl-fan", arrayProperties={"size": 2000})
    emu.advance(60)
    store = FakeTaskStateStore()
    tries = Tries(emu, store)
    policy: dict[str, Any] = {"include_array_children": True, "max_failed_jobs": 500, "xcom_max_jobs": 2000}
    assert tries.poke(**policy) is False
    (stored,) = store.values.values()
    assert len(stored) < 1000, stored
    emu.advance(900)
    result = tries.poke(**policy)  # the failed children aged out
    assert isinstance(result, PokeReturnValue) and result.is_done
    records = result.xcom_value
    assert len(records) == 2000 and sum(r["status"] == "FAILED" for r in records) == 500


def test_reschedule_refuses_a_success_after_a_gap_longer_than_the_retention(
    emu: BatchEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tries further apart than the service keeps finished jobs: a job may have started, failed and aged out between
    them, unseen. The next try cannot prove the success the jobs it sees give."""
    assume_retention(monkeypatch, RETENTION_S)
    bad, _ = bad_then_long(emu, bad_after=30, long_for=550)
    emu.advance(5)
    tries = Tries(emu, FakeTaskStateStore())
    assert tries.poke() is False  # both still running
    emu.advance(600)
    assert aged_out(emu, bad)
    with pytest.raises(AirflowFailException, match=NOT_PROVEN):  # before: SUCCESS on etl-long alone
        tries.poke()


def test_reschedule_with_a_store_succeeds_when_nothing_can_be_missing(emu: BatchEmulator) -> None:
    bad_then_long(emu, bad_after=30, long_for=650, bad_code=0)  # both succeed this time
    emu.advance(5)
    tries = Tries(emu, FakeTaskStateStore())
    assert tries.poke(fail_fast=False, max_failed_jobs=1) is False
    emu.advance(100)
    assert tries.poke(fail_fast=False, max_failed_jobs=1) is False
    emu.advance(600)  # etl-bad (a success after all) has aged out: a success, counted or not, cannot flip a verdict
    result = tries.poke(fail_fast=False, max_failed_jobs=1)
    assert isinstance(result, PokeReturnValue) and result.is_done


def test_reschedule_memory_lasts_through_a_retry_and_ends_with_a_clear(emu: BatchEmulator) -> None:
    """Airflow counts a reschedule-mode sensor's wait (its timeout) over a round of tries: a retry stays in it and
    keeps the memory; a clear starts a new wait, which judges what the service lists. So does a wait with other
    arguments (a changed DAG)."""
    bad, _ = bad_then_long(emu)
    emu.advance(60)
    store = FakeTaskStateStore()
    tries = Tries(emu, store)
    assert tries.poke(fail_fast=False) is False
    emu.advance(900)
    assert aged_out(emu, bad)
    tries.retry()  # e.g. the worker died: a new task instance try, no reschedule yet in it
    with pytest.raises(AirflowFailException, match=f"etl-bad \\({bad}\\): FAILED"):
        tries.poke(fail_fast=False)
    other = tries.poke(fail_fast=False, job_name="etl-l*")  # other arguments: not this memory
    assert isinstance(other, PokeReturnValue) and other.is_done
    tries.clear()
    result = tries.poke(fail_fast=False)
    assert isinstance(result, PokeReturnValue) and result.is_done


# -- reschedule mode without a task_state_store (Airflow < 3.3): no false success -----------------------------------
def test_without_a_store_a_later_try_refuses_a_success_it_cannot_prove(emu: BatchEmulator) -> None:
    bad, _ = bad_then_long(emu)
    emu.advance(60)
    tries = Tries(emu, store=None)
    assert tries.poke(fail_fast=False) is False  # saw etl-bad fail: nowhere to keep it
    emu.advance(900)
    assert aged_out(emu, bad)
    with pytest.raises(AirflowFailException, match=NOT_PROVEN) as err:  # before: SUCCESS on etl-long alone
        tries.poke(fail_fast=False)
    assert "task_state_store" in str(err.value)


def test_without_a_store_the_default_policy_still_succeeds(emu: BatchEmulator) -> None:
    """With fail_fast and no tolerance, an earlier try that saw a failure would have failed the task: a later try
    cannot have forgotten one, and its success stands."""
    bad_then_long(emu, bad_after=30, long_for=550, bad_code=0)
    emu.advance(5)
    tries = Tries(emu, store=None)
    assert tries.poke() is False
    emu.advance(600)
    result = tries.poke()
    assert isinstance(result, PokeReturnValue) and result.is_done


def test_without_a_store_a_recent_created_after_proves_nothing_aged_out(emu: BatchEmulator) -> None:
    bad_then_long(emu, bad_after=30, long_for=550, bad_code=0)
    created_after = emu.now_ms() - 60_000  # within the service's retention of now: no matching job can be gone
    emu.advance(5)
    tries = Tries(emu, store=None)
    assert tries.poke(fail_fast=False, created_after=created_after) is False
    emu.advance(600)
    result = tries.poke(fail_fast=False, created_after=created_after)
    assert isinstance(result, PokeReturnValue) and result.is_done
    with pytest.raises(AirflowFailException, match=NOT_PROVEN):  # the same wait with no such bound
        tries.poke(fail_fast=False)


# -- deferrable: what the trigger remembers, and a rebuilt trigger ---------------------------------------------------
def defer(s: BatchJobsSensor, ctx: dict[str, Any]) -> dict[str, Any]:
    """The trigger's kwargs, as the triggerer stores them (JSON)."""
    with pytest.raises(TaskDeferred) as deferral:
        s.execute(ctx)
    trigger = deferral.value.trigger
    assert isinstance(trigger, BatchJobsTrigger)
    _classpath, kwargs = trigger.serialize()
    return json.loads(json.dumps(kwargs))


def run_trigger(emu: BatchEmulator, kwargs: dict[str, Any], step: float, polls: int | None = None) -> Any:
    """One triggerer process's life for a trigger rebuilt from ``kwargs``: each sleep of its poll loop moves the
    emulated clock by ``step``; after ``polls`` polls the process dies (None: run to the event)."""

    async def life() -> dict[str, Any] | None:
        dead, slept = asyncio.Event(), 0

        async def sleep(seconds: float) -> None:
            nonlocal slept
            if polls is not None and slept > polls:
                dead.set()
                await asyncio.Event().wait()
            slept += 1
            emu.advance(step)
            await asyncio.sleep(0)

        async def first_event() -> dict[str, Any] | None:
            async with contextlib.aclosing(BatchJobsTrigger(**kwargs).run()) as events:
                async for event in events:
                    return dict(event.payload)
            return None

        with mock.patch.object(SharedPoll, "sleep", staticmethod(sleep)):
            running, death = asyncio.ensure_future(first_event()), asyncio.ensure_future(dead.wait())
            await asyncio.wait([running, death], return_when=asyncio.FIRST_COMPLETED)
            death.cancel()
            if running.done():
                return running.result()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            return None

    return asyncio.run(life())


def context() -> dict[str, Any]:
    ti = mock.MagicMock()
    ti.pushed = {}
    ti.xcom_push.side_effect = lambda key, value: ti.pushed.__setitem__(key, value)
    return {"ti": ti}


def test_the_trigger_remembers_a_failure_the_poke_before_deferring_saw(emu: BatchEmulator) -> None:
    """The poke before deferring saw etl-bad failed (fail_fast=False: wait for the rest); it aged out before the
    trigger's first poll. The trigger's kwargs carry it."""
    bad, _ = bad_then_long(emu)
    emu.advance(60)
    kwargs = defer(sensor(deferrable=True, fail_fast=False), context())
    emu.advance(200)  # the triggerer picks it up late
    assert aged_out(emu, bad)
    event = run_trigger(emu, kwargs, step=60)
    assert event["status"] == "failure", event["message"]  # before: success on etl-long alone
    assert f"etl-bad ({bad}): FAILED" in event["message"]


def test_a_rebuilt_trigger_refuses_a_success_after_a_failed_job_aged_out(
    emu: BatchEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first triggerer saw both jobs running and died; etl-bad failed and aged out before the trigger was rebuilt
    from its kwargs. The rebuilt trigger cannot know: no success."""
    assume_retention(monkeypatch, RETENTION_S)
    bad, _ = bad_then_long(emu, bad_after=60, long_for=900)
    emu.advance(5)
    kwargs = defer(sensor(deferrable=True), context())
    assert run_trigger(emu, kwargs, step=20, polls=1) is None  # two polls (both running), then the process dies
    emu.advance(600)
    assert aged_out(emu, bad)
    event = run_trigger(emu, kwargs, step=60)  # a new triggerer rebuilds it from the same kwargs
    assert event["status"] != "success", event["message"]  # before: success on etl-long alone
    assert NOT_PROVEN in event["message"]


def test_a_trigger_rebuilt_within_the_retention_loses_nothing(emu: BatchEmulator) -> None:
    """Rebuilt soon after its deferral (the service's retention far away), it reaches the verdict the first would
    have: etl-bad failed while no triggerer ran, and is still listed."""
    bad, _ = bad_then_long(emu, bad_after=60, long_for=300)
    emu.advance(5)
    kwargs = defer(sensor(deferrable=True, fail_fast=False), context())
    assert run_trigger(emu, kwargs, step=20, polls=1) is None  # two polls (both running), then the process dies
    emu.advance(40)
    assert failed(emu, bad) and not aged_out(emu, bad)
    event = run_trigger(emu, kwargs, step=20)
    assert event["status"] == "failure" and f"etl-bad ({bad}): FAILED" in event["message"]


def test_a_rebuilt_trigger_succeeds_when_nothing_can_be_missing(emu: BatchEmulator) -> None:
    bad_then_long(emu, bad_after=60, long_for=700, bad_code=0)
    emu.advance(5)
    kwargs = defer(sensor(deferrable=True), context())
    assert run_trigger(emu, kwargs, step=20, polls=1) is None
    emu.advance(600)  # far less than the 7 days the service keeps finished jobs
    event = run_trigger(emu, kwargs, step=60)
    assert event["status"] == "success", event["message"]


def test_a_context_that_does_not_say_which_try_it_is_counts_on_the_store() -> None:
    """Not a Task SDK context (no task_reschedule_count, no try number): with a store, a try that finds no memory of
    this wait is its first (every try leaves one); without one, any try may be a later one."""
    from airflow_batch_jobs.policy import Policy
    from airflow_batch_jobs.query import JobQuery
    from airflow_batch_jobs.wait_state import StoredWait
    from airflow_batch_jobs.watch import JobWatch

    watch = JobWatch(JobQuery.build(job_queue="queue"), Policy.build(fail_fast=False))
    bare = {"ti": mock.MagicMock()}
    with_store, _, _ = StoredWait({**bare, "task_state_store": FakeTaskStateStore()}, "f", 600).resume(watch)
    without, _, _ = StoredWait(bare, "f", 600).resume(watch)
    assert not with_store.earlier and without.earlier and without.outcomes_unknown
