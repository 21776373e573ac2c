"""Benchmark 2: client CPU per poll at N = 10,000 jobs: ours beside the bare boto3 paginator over the same pages.

Both read the same 100 pages (JOB_NAME filter, 100 per page) from an in-process emulator; CPU is the calling
thread's (``time.thread_time``), so the emulator's own threads are not counted. Ours is measured in the steady
state of a wait: jobs running (nothing to describe) and jobs finished (all described on an earlier poll).
    .venv/bin/python -m benchmarks.cpu_per_poll
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.watch import JobWatch
from benchmarks.common import connected, progressive, quiet

if TYPE_CHECKING:
    from collections.abc import Callable

JOBS = 10_000
ROUNDS = 7


def cpu(fn: Callable[[], object]) -> float:
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def main() -> None:
    quiet()
    emu = progressive(JOBS)
    with connected(emu):
        hook = BatchJobsHook()
        client = hook.conn
        query = JobQuery.build(job_queue="queue", job_name="bench-*")
        watch = JobWatch(query, Policy.build(min_jobs=JOBS), clock=emu.now_ms)

        def bare() -> None:
            pages = client.get_paginator("list_jobs").paginate(
                jobQueue="queue",
                filters=[{"name": "JOB_NAME", "values": ["bench-*"]}],
                PaginationConfig={"PageSize": 100},
            )
            assert sum(len(p["jobSummaryList"]) for p in pages) == JOBS

        rows = []
        for state, advance in (("running", 60), ("finished, described", 3600)):
            emu.advance(advance)
            watch.poll(hook)  # warm up; for finished jobs this is the poll that describes them
            ours, floor = [], []
            for _ in range(ROUNDS):  # alternate to share the machine's noise
                floor.append(cpu(bare))
                ours.append(cpu(lambda: watch.poll(hook)))
            rows.append((state, statistics.median(floor), statistics.median(ours)))
    emu.stop()
    print(f"| jobs ({JOBS:,}) | bare paginator CPU / poll | ours CPU / poll | ours / floor |")
    print("|---|---|---|---|")
    for state, floor_s, ours_s in rows:
        print(f"| {state} | {floor_s * 1000:.0f} ms | {ours_s * 1000:.0f} ms | {ours_s / floor_s:.2f} |")


if __name__ == "__main__":
    main()
