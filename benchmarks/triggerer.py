"""Benchmarks 3 and 4: many deferred sensors in one triggerer event loop.

3. K deferrable sensors with the same query: ListJobs calls per poll interval, K = 1 beside K = 100 (in-process
   emulator, emulated clock).
4. 1,000 concurrent ``BatchJobsTrigger``s in one event loop against the emulator running as its own process (wall
   clock, jobs that keep running): memory per trigger (RSS growth / triggers) and the loop's worst lag (how late a
   10 ms timer fires), for 1,000 triggers over 10 queries and over 1,000 distinct queries.
    .venv/bin/python -m benchmarks.triggerer
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from unittest import mock

from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from benchmarks.common import INTERVAL, connected, progressive, quiet

TRIGGERS = 1_000
RUN_SECONDS = 40.0
POLL_SECONDS = 5.0


def trigger(name: str, interval: float = INTERVAL, min_jobs: int = 1) -> BatchJobsTrigger:
    return BatchJobsTrigger(
        query=JobQuery.build(job_queue="queue", job_name=name).to_dict(),
        policy=Policy.build(min_jobs=min_jobs).to_dict(),
        poll_interval=interval,
    )


def shared_calls(k: int, jobs: int = 250) -> tuple[int, int, int]:
    """(ListJobs, DescribeJobs, polls) for k triggers with one query over a whole progressive wait."""
    emu = progressive(jobs)
    polls = [0]

    async def emulated_sleep(seconds: float) -> None:
        polls[0] += 1
        await asyncio.sleep(0.01)
        emu.advance(seconds)

    async def run() -> None:
        triggers = [trigger("bench-*", min_jobs=jobs) for _ in range(k)]
        await asyncio.gather(*(anext(t.run()) for t in triggers))

    with connected(emu), mock.patch.object(SharedPoll, "sleep", staticmethod(emulated_sleep)):
        asyncio.run(run())
    calls = emu.calls
    emu.stop()
    return calls.get("ListJobs", 0), calls.get("DescribeJobs", 0), polls[0] - 1  # less the first poll's stagger


def rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


class FullCollections:
    """When CPython's full (generation 2) garbage collections ran: they stop the whole process, triggers or not."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.monotonic()
        else:
            self.pauses.append((self._started, time.monotonic()))

    def during(self, start: float, end: float) -> bool:
        return any(s < end and e > start for s, e in self.pauses)

    @property
    def longest_ms(self) -> float:
        return max((e - s for s, e in self.pauses), default=0.0) * 1000


def full_collection_ms() -> float:
    start = time.monotonic()
    gc.collect()
    return (time.monotonic() - start) * 1000


@dataclass
class Capacity:
    kib_per_trigger: float
    worst_lag_ms: float
    median_lag_ms: float
    worst_lag_outside_gc_ms: float
    full_collections: int
    longest_collection_ms: float
    polls: int


async def capacity(queries: int) -> Capacity:
    """Memory and loop lag for TRIGGERS triggers over ``queries``, with CPython's full collections told apart."""
    # a warm-up trigger pays for the imports and the first client, so the growth is the triggers' own
    warm = asyncio.ensure_future(anext(trigger("warm-*", POLL_SECONDS).run()))
    await asyncio.sleep(3)
    warm.cancel()
    await asyncio.gather(warm, return_exceptions=True)
    gc.collect()
    before = rss_kib()
    tasks = [asyncio.ensure_future(anext(trigger(f"job-{i % queries}", POLL_SECONDS).run())) for i in range(TRIGGERS)]
    lags: list[float] = []
    outside_gc: list[float] = []
    collections = FullCollections()
    gc.callbacks.append(collections)
    end = time.monotonic() + RUN_SECONDS
    while time.monotonic() < end:
        t0 = time.monotonic()
        await asyncio.sleep(0.01)
        t1 = time.monotonic()
        lags.append(t1 - t0 - 0.01)
        if not collections.during(t0, t1):
            outside_gc.append(t1 - t0 - 0.01)
    gc.callbacks.remove(collections)
    gc.collect()
    after = rss_kib()
    done = [t for t in tasks if t.done()]
    assert not done, f"{len(done)} triggers ended early: {done[0].result() if done else ''}"
    loops = SharedPoll._loops.get(asyncio.get_running_loop(), {})
    polls = sum(p.polls for p in loops.values())
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lags.sort()
    return Capacity(
        (after - before) / TRIGGERS,
        lags[-1] * 1000,
        lags[len(lags) // 2] * 1000,
        max(outside_gc, default=0.0) * 1000,
        len(collections.pauses),
        collections.longest_ms,
        polls,
    )


def emulator_process(jobs: int) -> tuple[subprocess.Popen[str], str]:
    scenario = {
        "queues": ["queue"],
        "job_definitions": [{"name": "jobdef"}],
        "outcomes": [{"match": {"name": "*"}, "attempts": [{"exit_code": 0, "duration": 86400}]}],
        "submit": [{"at": 0, "name": "job", "queue": "queue", "definition": "jobdef", "count": jobs}],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(scenario, handle)
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_batch_jobs.testing", "serve", "--scenario", handle.name],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().rsplit(" ", 1)[1].strip()


def main() -> None:
    quiet()
    print("### Many sensors, one question (250 jobs, whole wait)\n")
    print("| K triggers | ListJobs | DescribeJobs | polls | ListJobs per poll |")
    print("|---|---|---|---|---|")
    for k in (1, 100):
        lists, describes, polls = shared_calls(k)
        print(f"| {k} | {lists} | {describes} | {polls} | {lists / polls:.2f} |")

    print(f"\n### Triggerer capacity ({TRIGGERS:,} triggers, poll every {POLL_SECONDS:g} s, {RUN_SECONDS:g} s wall)\n")
    print(f"A full garbage collection of this process with no trigger yet: {full_collection_ms():.0f} ms.\n")
    print(
        "| distinct queries | KiB per trigger | worst loop lag | median loop lag | worst lag outside full GCs "
        "| full GCs | longest full GC | polls made |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for queries in (10, TRIGGERS):
        proc, endpoint = emulator_process(jobs=queries)
        conn_json = json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                "extra": {"region_name": "us-east-1", "endpoint_url": endpoint}})  # fmt: skip
        try:
            with mock.patch.dict(os.environ, {"AIRFLOW_CONN_AWS_DEFAULT": conn_json}):
                c = asyncio.run(capacity(queries))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        print(
            f"| {queries:,} | {c.kib_per_trigger:.1f} | {c.worst_lag_ms:.0f} ms | {c.median_lag_ms:.1f} ms | "
            f"{c.worst_lag_outside_gc_ms:.0f} ms | {c.full_collections} | {c.longest_collection_ms:.0f} ms | "
            f"{c.polls:,} |"
        )


if __name__ == "__main__":
    main()
