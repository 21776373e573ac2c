"""Benchmark 1 and 5: API calls over a whole wait, and detection latency.

N jobs finish progressively over ten emulated minutes; a poll every 30 emulated seconds. Ours (poke and deferrable)
beside the amazon provider's approach: one ``BatchSensor`` per job (one DescribeJobs per job per poke). The floor is
ceil(N/100) ListJobs pages per poll plus ceil(N/100) DescribeJobs over the jobs' lives. The deferrable wait's count
includes the worker's read back of the jobs its trigger's event names (ceil(records/100) DescribeJobs).
    .venv/bin/python benchmarks/api_calls.py [N ...]
"""

from __future__ import annotations

import asyncio
import math
import sys
from dataclasses import dataclass
from unittest import mock

from airflow.providers.amazon.aws.sensors.batch import BatchSensor

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from airflow_batch_jobs.verdict_event import resolve_event
from benchmarks.common import INTERVAL, connected, progressive, quiet

SIZES = (10, 100, 1_000, 10_000)
AMAZON_MEASURED_UP_TO = 100  # above this, its calls are counted from the same schedule instead of made


@dataclass
class Wait:
    list_calls: int
    describe_calls: int
    polls: int
    verdict_after_last_job_s: float  # detection latency, emulated seconds


def sensor(jobs: int) -> BatchJobsSensor:
    return BatchJobsSensor(
        task_id="wait", job_queue="queue", job_name="bench-*", min_jobs=jobs, poke_interval=INTERVAL,
        xcom_max_jobs=jobs,
    )  # fmt: skip


def last_stop_ms(records: list[dict]) -> int:
    return max(r["stopped_at"] for r in records)


def ours_poke(jobs: int) -> Wait:
    emu = progressive(jobs)
    with connected(emu):
        s, polls = sensor(jobs), 0
        while True:
            polls += 1
            result = s.poke({"ti": mock.MagicMock()})
            if result:
                break
            emu.advance(INTERVAL)
        calls = emu.calls
        latency = (emu.now_ms() - last_stop_ms(result.xcom_value)) / 1000  # type: ignore[union-attr]
    emu.stop()
    return Wait(calls.get("ListJobs", 0), calls.get("DescribeJobs", 0), polls, latency)


def ours_deferrable(jobs: int) -> Wait:
    emu = progressive(jobs)
    polled_at: list[int] = []

    async def emulated_sleep(seconds: float) -> None:
        polled_at.append(emu.now_ms())
        await asyncio.sleep(0.01)  # let the trigger judge the poll before the next one begins
        emu.advance(seconds)

    async def run() -> dict:
        s = sensor(jobs)
        trigger = BatchJobsTrigger(
            query=s.build_query().to_dict(), policy=s.policy.to_dict(), poll_interval=INTERVAL, xcom_max_jobs=jobs
        )
        return (await anext(trigger.run())).payload

    with connected(emu), mock.patch.object(SharedPoll, "sleep", staticmethod(emulated_sleep)):
        event = asyncio.run(run())
        event = resolve_event(event, BatchJobsHook(), "summary")  # the worker reads back the jobs the event names
    calls = emu.calls
    emu.stop()
    latency = (polled_at[-1] - last_stop_ms(event["records"])) / 1000
    polls = len(polled_at) - 1  # the first sleep is the stagger before the first poll
    return Wait(calls.get("ListJobs", 0), calls.get("DescribeJobs", 0), polls, latency)


def amazon(jobs: int) -> tuple[int, int | None]:
    """One amazon ``BatchSensor`` per job, all poked each interval until each sees its job finished: the calls
    counted from the schedule (each sensor pokes until the poll after its job ends), and measured for small N."""
    emu = progressive(jobs)
    ids = sorted(emu.model.jobs)
    start = emu.now_ms()
    stops = [emu.model.timeline(emu.model.jobs[job_id]).stopped_at or start for job_id in ids]
    counted = sum(math.ceil((stop - start) / 1000 / INTERVAL) + 1 for stop in stops)
    if jobs > AMAZON_MEASURED_UP_TO:
        emu.stop()
        return counted, None
    with connected(emu):
        waiting = {job_id: BatchSensor(task_id=f"s{i}", job_id=job_id) for i, job_id in enumerate(ids)}
        while waiting:
            for job_id in list(waiting):
                if waiting[job_id].poke({}):
                    del waiting[job_id]
            emu.advance(INTERVAL)
        calls = emu.calls.get("DescribeJobs", 0)
    emu.stop()
    return counted, calls


def main(sizes: tuple[int, ...]) -> None:
    quiet()
    print("| N | mode | ListJobs | DescribeJobs | total | polls | floor | ours / floor | verdict after last job |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        pages = math.ceil(n / 100)
        for mode, run in (("ours, poke", ours_poke), ("ours, deferrable", ours_deferrable)):
            w = run(n)
            floor = w.polls * pages + pages
            total = w.list_calls + w.describe_calls
            print(
                f"| {n:,} | {mode} | {w.list_calls:,} | {w.describe_calls:,} | {total:,} | {w.polls} | {floor:,} | "
                f"{total / floor:.2f} | {w.verdict_after_last_job_s:.0f} s ({w.verdict_after_last_job_s / INTERVAL:.2f}"
                f" interval) |"
            )
        counted, measured = amazon(n)
        calls = measured if measured is not None else counted
        how = f"measured; schedule says {counted:,}" if measured is not None else "counted from the schedule"
        print(f"| {n:,} | amazon BatchSensor per job ({how}) | 0 | {calls:,} | {calls:,} | | | {calls / floor:.1f} | |")


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
