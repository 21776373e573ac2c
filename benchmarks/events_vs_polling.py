"""Benchmark 6: a deferrable wait reading job state-change events against the same wait polling (#17).

The same night of N jobs, played three times in one run on emulators with the same plan and seed: the wait polling
every ``poke_interval`` (30 emulated seconds); the same wait with ``events_queue_url`` (events wake a confirming
listing, polling is the safety net at 10 intervals, stretching to 30 while the events prove right); and with events
but every one of them lost. Measured: when the verdict came after the last job ended (emulated seconds), the listings
and ListJobs calls (pages) over the whole wait from the sensor's first poke, the SQS requests the event consumer made,
and the wall time of each run.

The night: jobs submitted one after another over the first ``SUBMIT_SPAN_S`` (as a workflow submits them), each
waiting on capacity (RUNNABLE) and running for durations of its class, one class in four killed once (exit 137) and
retried: about 5 events a job, job ends spread over the wait. The events come from the emulator's moto SQS server,
which costs O(messages waiting) per request: so the consumer reads while the jobs progress, as it does in a
triggerer, and the emulated clock moves in steps of at most ``STEP_S``, each step's messages taken off the queue
before the next (real time, not measured). Where nothing happens, the clock jumps to the next status change. The
events' verdict therefore includes up to ``STEP_S`` of that stepping, and no EventBridge delivery delay.
    .venv/bin/python -m benchmarks.events_vs_polling [N ...]
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from unittest import mock

from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_batch_jobs.event_view import SAFETY_NET_FACTOR, SAFETY_NET_MAX_FACTOR
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.testing.clock import ManualClock
from airflow_batch_jobs.testing.deferral import JudgedBeforeSleep
from airflow_batch_jobs.triggers.event_consumer import EventConsumer
from airflow_batch_jobs.triggers.event_wait import EventWait
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from benchmarks.common import quiet

if TYPE_CHECKING:
    from collections.abc import Iterator

SIZES = (100, 1_000, 10_000)
INTERVAL = 30.0  # poke_interval, emulated seconds
SAFETY_NET_S = SAFETY_NET_FACTOR * INTERVAL
SUBMIT_SPAN_S = 1_800.0  # jobs are submitted over the first half hour
STEP_S = 0.5  # the emulated clock moves at most this far between two reads of the queue
CLASSES = 16  # job classes: (queue wait, run time, retried), by name
START_MS = 1_795_000_000_000
SEED = 17
DRAIN_TIMEOUT_S = 30.0  # real seconds a step may wait for the consumer before the run is reported as unsound


# -- the night ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobClass:
    runnable_s: float
    duration_s: float
    retried: bool  # killed once (137), then succeeds


def classes() -> list[JobClass]:
    rng = random.Random(SEED)
    return [
        JobClass(round(rng.uniform(5, 180)), round(rng.uniform(60, 900)), retried=k % 4 == 3) for k in range(CLASSES)
    ]


def night(emu: BatchEmulator, n: int) -> None:
    """``n`` jobs ``night-kCC-NNNNN`` submitted over ``SUBMIT_SPAN_S`` as the clock passes their time."""
    emu.setup()
    for k, c in enumerate(classes()):
        attempts = [{"exit_code": 0, "duration": c.duration_s}]
        if c.retried:
            attempts.insert(0, {"exit_code": 137, "duration": c.duration_s / 3})
        emu.add_outcome({"runnable": c.runnable_s, "attempts": attempts}, name=f"night-k{k:02d}-*")
    rng = random.Random(SEED + n)
    for i in range(n):
        k = rng.randrange(CLASSES)
        at = START_MS + int(SUBMIT_SPAN_S * 1000 * (i + rng.random()) / n)
        request: dict[str, Any] = {"jobName": f"night-k{k:02d}-{i:05d}", "jobQueue": "queue", "jobDefinition": "jobdef"}
        if k % 4 == 3:
            request["retryStrategy"] = {"attempts": 2}
        emu.model.schedule(at, request)


@dataclass(frozen=True)
class Plan:
    """What the night does, read from a dry run of the emulator's model (same plan, same seed)."""

    moments: list[int]  # every status change, ascending
    last_end_ms: int
    events: int  # status changes an events queue gets (none at submission)


def dry_run(n: int) -> Plan:
    emu = BatchEmulator(clock=ManualClock(START_MS), seed=SEED)
    night(emu, n)
    emu.model.clock.advance(10 * 24 * 3600)
    emu.model.run_schedule()
    life = emu.model.lifecycle
    moments: set[int] = set()
    ends, events = [], 0
    for job in emu.model.jobs.values():
        transitions = life.timeline(job).transitions
        moments.update(t for t, _, _ in transitions)
        events += sum(1 for _, status, _ in transitions if status != "SUBMITTED")
        end = life.end_of(job)
        assert end is not None and end[1] == "SUCCEEDED", (job.name, end)
        ends.append(end[0])
    assert len(ends) == n
    return Plan(sorted(moments), max(ends), events)


# -- the wait -------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    mode: str
    verdict: str
    at_ms: int
    listings: int
    list_calls: int
    sqs_requests: int
    events_read: int
    confirmations: int
    wall_s: float
    drain_timeouts: int
    job_names: list[str]

    def after_last_job_s(self, plan: Plan) -> float:
        return (self.at_ms - plan.last_end_ms) / 1000


class EventClock:
    """The shared poll's sleeps move the emulator's clock: in steps of at most ``STEP_S`` through status changes
    (jumping where there is none), each step's events taken off the queue by the consumer before the next one."""

    def __init__(self, emu: BatchEmulator, plan: Plan, *, drain: bool) -> None:
        self.emu, self.plan, self.drain = emu, plan, drain
        self.drain_timeouts = 0

    def clock(self) -> float:
        return self.emu.now_ms() / 1000

    async def sleep(self, seconds: float) -> None:
        end = self.emu.now_ms() + int(seconds * 1000)
        if not self.drain:  # polling, or every event lost: nothing to read between polls
            self.emu.advance(seconds)
        while (now := self.emu.now_ms()) < end:
            i = bisect.bisect_right(self.plan.moments, now)
            following = self.plan.moments[i] if i < len(self.plan.moments) else end
            target = min(end, max(now + int(STEP_S * 1000), following))
            self.emu.advance((target - now) / 1000)
            if self.drain and following <= target:
                await self.drained()
            await asyncio.sleep(0)

    async def drained(self) -> None:
        """Until the consumer has delivered and deleted every message sent so far (real time, bounded)."""
        bus = self.emu.events
        assert bus is not None
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            consumers = EventConsumer._loops.get(asyncio.get_running_loop(), {})
            deleted = sum(c.deleted for c in consumers.values())
            if deleted >= bus.published()["sent"]:
                return
            await asyncio.sleep(0.001)
        self.drain_timeouts += 1


class Recorded:
    """Listings begun by the shared poll and the EventWaits made (the triggers make theirs inside run())."""

    def __init__(self) -> None:
        self.polls = 0
        self.waits: list[EventWait] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[Recorded]:
        poll_once, attach = SharedPoll._poll_once, EventWait.attach

        async def counted(poll: SharedPoll, client: Any) -> None:
            self.polls += 1
            await poll_once(poll, client)

        def recorded(wait: EventWait, poll: Any, watch: Any, cadence: Any) -> None:
            self.waits.append(wait)
            attach(wait, poll, watch, cadence)

        with mock.patch.object(SharedPoll, "_poll_once", counted), mock.patch.object(EventWait, "attach", recorded):
            yield self


def sensor(n: int, events_queue_url: str | None) -> BatchJobsSensor:
    return BatchJobsSensor(
        task_id="wait",
        job_queue="queue",
        job_name="night-*",
        min_jobs=n,
        poke_interval=INTERVAL,
        xcom_max_jobs=n,
        deferrable=True,
        events_queue_url=events_queue_url,
    )


async def first_event(trigger: Any, emu: BatchEmulator) -> tuple[dict[str, Any], int]:
    async with contextlib.aclosing(trigger.run()) as events:
        payload = (await anext(events)).payload
    at = emu.now_ms()
    await trigger.cleanup()
    return payload, at


def play(n: int, plan: Plan, mode: str) -> Run:
    """One wait over the night: ``polling``, ``events`` or ``events, all lost``."""
    events = mode != "polling"
    emu = BatchEmulator(clock=ManualClock(START_MS), seed=SEED, events=events)
    night(emu, n)
    started = time.monotonic()
    with emu:
        if mode == "events, all lost":
            emu.inject_event_faults(loss=1.0)
        time_ = EventClock(emu, plan, drain=mode == "events")
        recorded = Recorded()
        with (
            mock.patch.dict(os.environ, {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}),
            mock.patch("airflow_batch_jobs.watch.wall_clock_ms", emu.now_ms),
            mock.patch("airflow_batch_jobs.triggers.shared_poll.random", random.Random(SEED)),
            mock.patch.object(SharedPoll, "sleep", staticmethod(time_.sleep)),
            mock.patch.object(SharedPoll, "clock", staticmethod(time_.clock)),
            JudgedBeforeSleep().installed(),
            recorded.installed(),
        ):
            task, context = sensor(n, emu.events_queue_url if events else None), {"ti": mock.MagicMock()}
            emu.reset_counters()
            try:
                task.execute(context)
                raise AssertionError("the night cannot be over at its first poke")
            except TaskDeferred as deferral:
                payload, at = asyncio.run(first_event(deferral.trigger, emu))
            list_calls = emu.calls.get("ListJobs", 0)
            records = task.execute_complete(context, payload)  # the worker reads the jobs back (DescribeJobs)
        sqs = sum(emu.events.sqs_calls.values()) if emu.events is not None else 0
        wait = recorded.waits[0] if recorded.waits else None
    return Run(
        mode=mode,
        verdict=payload["status"],
        at_ms=at,
        listings=1 + recorded.polls,  # the sensor's poke before deferring, then the trigger's
        list_calls=list_calls,
        sqs_requests=sqs,
        events_read=wait.delivered if wait is not None else 0,
        confirmations=wait.confirmations if wait is not None else 0,
        wall_s=time.monotonic() - started,
        drain_timeouts=time_.drain_timeouts,
        job_names=sorted(r["job_name"] for r in records),
    )


# -- the table ------------------------------------------------------------------------------------------------------
def row(n: int, plan: Plan, run: Run, polling: Run) -> str:
    lag = run.after_last_job_s(plan)
    unsound = f" ({run.drain_timeouts} step(s) not drained in {DRAIN_TIMEOUT_S:g} s)" if run.drain_timeouts else ""
    return (
        f"| {n:,} | {plan.events:,} | {run.mode} | {lag:.1f} s ({lag / INTERVAL:.2f} interval) | {run.listings} | "
        f"{run.list_calls:,} | {run.list_calls / polling.list_calls:.2f} | {run.sqs_requests:,} | "
        f"{run.events_read:,} | {run.confirmations} | {run.wall_s:.0f} s{unsound} |"
    )


def main(sizes: tuple[int, ...]) -> None:
    quiet()
    with contextlib.suppress(ImportError):  # Airflow 3 warns that execute() runs outside a task runner: it does
        from airflow.sdk.bases.operator import ExecutorSafeguard

        ExecutorSafeguard.test_mode = True
    print(
        f"poke_interval {INTERVAL:g} s, safety net {SAFETY_NET_S:g} s (up to {SAFETY_NET_MAX_FACTOR * INTERVAL:g} s "
        f"while events prove right); jobs submitted over {SUBMIT_SPAN_S:g} s; "
        f"emulated clock steps <= {STEP_S:g} s\n"
    )
    print(
        "| N | events | wait | verdict after last job | listings | ListJobs | ListJobs / polling's | SQS requests | "
        "events read | listings asked by events | wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    lags, ratios, lost_lags = [], [], []
    for n in sizes:
        plan = dry_run(n)
        polling, events, lost = (play(n, plan, mode) for mode in ("polling", "events", "events, all lost"))
        for run in (polling, events, lost):
            assert run.verdict == "success", (run.mode, run.verdict)
            assert run.job_names == polling.job_names, f"{run.mode}: other records than polling's"
            print(row(n, plan, run, polling), flush=True)
        lags.append(events.after_last_job_s(plan))
        ratios.append(events.list_calls / polling.list_calls)
        lost_lags.append(lost.after_last_job_s(plan))
    print(
        f"\nverdict after the last job with events: at most {max(lags):.1f} s (goal <= 2 s: "
        f"{'met' if max(lags) <= 2 else 'MISSED'}); ListJobs with events / polling's: {min(ratios):.2f} to "
        f"{max(ratios):.2f} (goal <= 0.1: {'met' if max(ratios) <= 0.1 else 'MISSED'}); every event lost: verdict "
        f"at most {max(lost_lags):.1f} s after the last job (goal <= one safety net, {SAFETY_NET_S:g} s: "
        f"{'met' if max(lost_lags) <= SAFETY_NET_S else 'MISSED'})"
    )


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
