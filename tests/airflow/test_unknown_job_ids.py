"""job_ids and eventual consistency (#13, "No false verdict"): an id the service does not return yet is waited for,
never dropped; an id that never appears fails the wait after ``UNKNOWN_JOB_ID_TIMEOUT_S`` (measured from the wait's
start), with a message naming it. In every mode: poke, reschedule (a new sensor per try), deferrable (the trigger,
also when rebuilt from its kwargs), and the one-shot check / describe(check=True) operators.

The emulator plays the service's visibility lag (``visibility_lag_seconds``): a just-submitted job is missing from
ListJobs and DescribeJobs for that long.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, TaskDeferred

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.operators.batch_jobs import BatchCheckJobsOperator, BatchDescribeJobsOperator
from airflow_batch_jobs.policy import Policy, Verdict
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.testing.deferral import JudgedBeforeSleep
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from airflow_batch_jobs.verdict_event import resolve_event
from airflow_batch_jobs.watch import UNKNOWN_JOB_ID_TIMEOUT_S, JobWatch

if TYPE_CHECKING:
    from collections.abc import Iterator

LAG_S = 5
NO_SUCH_JOB = "00000000-0000-4000-8000-00000000dead"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchEmulator]:
    """An emulator whose jobs are invisible for 5 s after submission; the waits' clocks are its clock."""
    with BatchEmulator(profile="realistic", behaviours={"visibility_lag_seconds": LAG_S}) as emulator:
        emulator.setup()
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emulator.airflow_connection())
        monkeypatch.setattr("airflow_batch_jobs.watch.wall_clock_ms", emulator.now_ms)
        yield emulator


def context(first_try_began: dt.datetime | None = None, tries: int = 0) -> dict[str, Any]:
    """A task context; ``first_try_began`` is what Airflow answers a reschedule-mode sensor's later tries."""
    ti = mock.MagicMock()
    ti.pushed = {}
    ti.xcom_push.side_effect = lambda key, value: ti.pushed.__setitem__(key, value)
    ti.get_first_reschedule_date.side_effect = lambda ctx: first_try_began if tries else None
    return {"ti": ti, "task_reschedule_count": tries}


def sensor(job_ids: list[str], **kwargs: Any) -> BatchJobsSensor:
    return BatchJobsSensor(task_id="wait", job_ids=job_ids, poke_interval=kwargs.pop("poke_interval", 5), **kwargs)


def a_done_then_b_submitted(emu: BatchEmulator) -> tuple[str, str]:
    """``a`` has finished (succeeded); ``b`` (which will fail) has just been submitted: not visible yet."""
    a = emu.submit("a")
    emu.advance(60)
    emu.add_outcome({"attempts": [{"exit_code": 1, "reason": "boom"}]}, name="b")
    b = emu.submit("b")
    return a, b


def as_datetime(epoch_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)


# -- poke mode ------------------------------------------------------------------------------------------------------
def test_poke_waits_for_an_id_not_visible_yet_instead_of_succeeding_on_the_others(emu: BatchEmulator) -> None:
    a, b = a_done_then_b_submitted(emu)
    s, ctx = sensor([a, b]), context()
    assert s.poke(ctx) is False  # a alone has finished: no verdict while b is unknown
    with pytest.raises(AirflowFailException) as err:
        for _ in range(20):
            emu.advance(5)
            assert s.poke(ctx) is False
    assert f"b ({b}): FAILED" in str(err.value)  # b became visible, ran, failed: the right verdict
    assert sorted(r["job_id"] for r in ctx["ti"].pushed["return_value"]) == sorted([a, b])


def test_poke_fails_an_id_that_never_appears_after_the_bound_naming_it(emu: BatchEmulator) -> None:
    a = emu.submit("a")
    emu.advance(60)
    s, ctx = sensor([a, NO_SUCH_JOB], poke_interval=60), context()
    began = emu.now_ms()
    with pytest.raises(AirflowFailException) as err:
        for _ in range(20):
            assert s.poke(ctx) is False
            emu.advance(60)
    waited = (emu.now_ms() - began) / 1000
    assert UNKNOWN_JOB_ID_TIMEOUT_S <= waited < UNKNOWN_JOB_ID_TIMEOUT_S + 60  # at the first poll past the bound
    message = str(err.value)
    assert NO_SUCH_JOB in message and "not found" in message and a not in message.split("not found")[0]


# -- reschedule mode: a new sensor per try; the bound counts from the first try (Airflow keeps its start) ----------
def test_reschedule_tries_wait_for_a_lagging_id_and_fail_a_missing_one_from_the_first_try(emu: BatchEmulator) -> None:
    a, b = a_done_then_b_submitted(emu)
    assert sensor([a, b], mode="reschedule").poke(context()) is False  # first try: b not visible yet
    emu.advance(60)
    with pytest.raises(AirflowFailException, match=f"b \\({b}\\): FAILED"):
        sensor([a, b], mode="reschedule").poke(context(tries=1))

    first = emu.now_ms()
    tries = 0
    with pytest.raises(AirflowFailException) as err:
        for tries in range(20):
            s = sensor([a, NO_SUCH_JOB], mode="reschedule")  # a new operator instance each try
            assert s.poke(context(as_datetime(first), tries=tries)) is False
            emu.advance(60)
    assert tries * 60 >= UNKNOWN_JOB_ID_TIMEOUT_S and (tries - 1) * 60 < UNKNOWN_JOB_ID_TIMEOUT_S
    assert NO_SUCH_JOB in str(err.value) and "not found" in str(err.value)


# -- deferrable: the bound is measured from the poke before deferring, carried in the trigger's kwargs ------------
def run_trigger(emu: BatchEmulator, trigger: BatchJobsTrigger, step: float) -> dict[str, Any]:
    async def emulated_sleep(seconds: float) -> None:
        emu.advance(step)
        await asyncio.sleep(0)

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return resolve_event(event.payload, BatchJobsHook(), trigger.xcom_detail)  # as the worker reads it
        raise AssertionError("no event")

    # the poll loop waits for the trigger to judge each listing before its next (emulated) sleep moves the clock
    with mock.patch.object(SharedPoll, "sleep", staticmethod(emulated_sleep)), JudgedBeforeSleep().installed():
        return asyncio.run(first_event())


def deferred(s: BatchJobsSensor, ctx: dict[str, Any]) -> BatchJobsTrigger:
    with pytest.raises(TaskDeferred) as deferral:
        s.execute(ctx)
    trigger = deferral.value.trigger
    assert isinstance(trigger, BatchJobsTrigger)
    _classpath, kwargs = trigger.serialize()  # as the triggerer rebuilds it
    return BatchJobsTrigger(**json.loads(json.dumps(kwargs)))


def test_deferrable_defers_on_a_lagging_id_and_the_trigger_judges_it(emu: BatchEmulator) -> None:
    a, b = a_done_then_b_submitted(emu)
    s, ctx = sensor([a, b], deferrable=True), context()
    event = run_trigger(emu, deferred(s, ctx), step=5)  # today: succeeded in the first poke, on a alone
    assert event["status"] == "failure" and f"b ({b}): FAILED" in event["message"]
    assert sorted(r["job_id"] for r in event["records"]) == sorted([a, b])


def test_deferrable_fails_a_missing_id_at_the_bound_from_the_first_poke(emu: BatchEmulator) -> None:
    a = emu.submit("a")
    emu.advance(60)
    began = emu.now_ms()
    s, ctx = sensor([a, NO_SUCH_JOB], deferrable=True, poke_interval=60), context()
    trigger = deferred(s, ctx)
    emu.advance(200)  # time spent deferring (the triggerer picks the trigger up): it counts
    event = run_trigger(emu, trigger, step=60)
    waited = (emu.now_ms() - began) / 1000
    assert event["status"] == "failure", event["message"]
    assert NO_SUCH_JOB in event["message"] and "not found" in event["message"]
    assert UNKNOWN_JOB_ID_TIMEOUT_S <= waited < UNKNOWN_JOB_ID_TIMEOUT_S + 2 * 60


# -- the one-shot operators: an unknown id is "not decided", never dropped ------------------------------------------
def test_check_operator_counts_an_unknown_id_as_not_decided(emu: BatchEmulator) -> None:
    a, b = a_done_then_b_submitted(emu)
    with pytest.raises(AirflowFailException, match="Not decided yet") as err:
        BatchCheckJobsOperator(task_id="c", job_ids=[a, b]).execute(context())
    assert b in str(err.value)
    with pytest.raises(AirflowSkipException, match="Not decided yet"):
        BatchCheckJobsOperator(task_id="c", job_ids=[a, b], if_active="skip").execute(context())
    with pytest.raises(AirflowFailException, match="Not decided yet") as err:
        BatchCheckJobsOperator(task_id="c", job_ids=[a, NO_SUCH_JOB]).execute(context())
    assert NO_SUCH_JOB in str(err.value)


def test_describe_operator_with_check_does_not_judge_without_an_unknown_id(emu: BatchEmulator) -> None:
    a, b = a_done_then_b_submitted(emu)
    with pytest.raises(AirflowFailException, match="Not finished") as err:
        BatchDescribeJobsOperator(task_id="d", job_ids=[a, b], check=True).execute(context())
    assert b in str(err.value)
    records = BatchDescribeJobsOperator(task_id="d", job_ids=[a, b]).execute(context())  # no check: described ones
    assert [r["job_id"] for r in records] == [a]
    emu.advance(60)
    with pytest.raises(AirflowFailException, match=f"b \\({b}\\): FAILED"):
        BatchDescribeJobsOperator(task_id="d", job_ids=[a, b], check=True).execute(context())


# -- the rule on its own (the describe operator's path: a plain DescribeJobs answer) -------------------------------
T0 = 1_780_000_000_000


def summary(job_id: str, status: str, exit_code: int | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {"jobId": job_id, "jobName": job_id, "status": status, "createdAt": T0}
    if exit_code is not None:
        job["container"] = {"exitCode": exit_code}
    return job


def test_a_failure_of_known_jobs_stands_and_names_the_unknown_id() -> None:
    now = [T0]
    watch = JobWatch(JobQuery.build(job_ids=["a", "b"]), Policy.build(), clock=lambda: now[0])
    watch.begin()
    decision = watch.decide([summary("a", "FAILED", 1)])
    assert decision.verdict is Verdict.FAILURE and "a (a): FAILED" in decision.message
    assert "b" in decision.message.split("\n")[-1] and "not known to AWS Batch yet" in decision.message


def test_with_fail_fast_off_an_overdue_id_fails_once_the_others_have_finished() -> None:
    now = [T0]
    watch = JobWatch(JobQuery.build(job_ids=["a", "b"]), Policy.build(fail_fast=False), clock=lambda: now[0])
    watch.begin()
    assert watch.decide([summary("a", "SUCCEEDED", 0)]).verdict is Verdict.WAITING
    now[0] = T0 + UNKNOWN_JOB_ID_TIMEOUT_S * 1000
    running = watch.decide([summary("a", "RUNNING")])
    assert running.verdict is Verdict.WAITING and "not found" in running.message
    failed = watch.decide([summary("a", "SUCCEEDED", 0)])
    assert failed.verdict is Verdict.FAILURE and "b" in failed.message and "not found" in failed.message
    strict = JobWatch(JobQuery.build(job_ids=["a", "b"]), Policy.build(), clock=lambda: now[0], began_ms=T0)
    assert strict.decide([summary("a", "RUNNING")]).verdict is Verdict.FAILURE  # fail_fast: at once
