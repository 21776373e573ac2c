"""Benchmark 5 (#15): what each class hands to XCom at 10,000 jobs, and the ListJobs calls of the list operator.

- XCom: 10,000 finished jobs in one queue; each class's ``return_value`` (a sensor's poke value) serialized as
  JSON, per ``xcom_detail``, with the default ``xcom_max_jobs`` (1000) and with the bound raised to every job.
- ListJobs: the list operator with ``created_after`` = today on a queue of 10,000 jobs finished two hours earlier and
  100 of today's, beside the same listing read to the end (``page_stop`` off: what it did before #15), and the check
  operator on the same window.
    .venv/bin/python -m benchmarks.operator_output
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any
from unittest import mock

import structlog

from airflow_batch_jobs.operators.batch_jobs import (
    BatchCheckJobsOperator,
    BatchDescribeJobsOperator,
    BatchListJobsOperator,
)
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.watch import JobListing
from benchmarks.common import connected, quiet

if TYPE_CHECKING:
    from collections.abc import Callable

JOBS = 10_000
TODAY = 100
DETAILS = ("summary", "full", "none")
BOUNDS = (1000, JOBS)


def finished_queue(jobs: int, prefix: str) -> tuple[BatchEmulator, list[str]]:
    emu = BatchEmulator().start()
    emu.setup()
    ids = [emu.submit(f"{prefix}-{i:05d}") for i in range(jobs)]
    emu.advance(7200)
    return emu, ids


def pushed(run: Callable[[Any], Any]) -> Any:
    """What Airflow would push as ``return_value``: the value returned (None: nothing)."""
    value = run({"ti": mock.MagicMock()})
    return getattr(value, "xcom_value", value)


def xcom_sizes() -> None:
    emu, ids = finished_queue(JOBS, "bench")
    classes: dict[str, Callable[[str, int], Callable[[Any], Any]]] = {
        "BatchListJobsOperator": lambda d, m: (
            BatchListJobsOperator(task_id="l", job_queue="queue", xcom_detail=d, xcom_max_jobs=m).execute
        ),
        "BatchDescribeJobsOperator": lambda d, m: (
            BatchDescribeJobsOperator(task_id="d", job_ids=ids, xcom_detail=d, xcom_max_jobs=m).execute
        ),
        "BatchDescribeJobsOperator(check=True)": lambda d, m: (
            BatchDescribeJobsOperator(task_id="d", job_ids=ids, check=True, xcom_detail=d, xcom_max_jobs=m).execute
        ),
        "BatchCheckJobsOperator": lambda d, m: (
            BatchCheckJobsOperator(task_id="c", job_queue="queue", xcom_detail=d, xcom_max_jobs=m).execute
        ),
        "BatchJobsSensor": lambda d, m: (
            BatchJobsSensor(task_id="s", job_queue="queue", xcom_detail=d, xcom_max_jobs=m).poke
        ),
    }
    print(f"XCom return_value at {JOBS:,} finished jobs (JSON)")
    print("| class | xcom_detail | " + " | ".join(f"xcom_max_jobs={m:,}: records, size" for m in BOUNDS) + " |")
    print("|---|---|" + "---|" * len(BOUNDS))
    with connected(emu):
        for name, build in classes.items():
            for detail in DETAILS:
                cells = []
                for bound in BOUNDS:
                    value = pushed(build(detail, bound))
                    size = 0 if value is None else len(json.dumps(value).encode())
                    count = "nothing pushed" if value is None else f"{len(value):,}"
                    cells.append(f"{count}, {size / 2**20:.2f} MiB" if value is not None else count)
                print(f"| {name} | {detail} | " + " | ".join(cells) + " |")
    emu.stop()


def list_calls() -> None:
    emu, _ = finished_queue(JOBS, "old")
    today = emu.now_ms()
    for i in range(TODAY):
        emu.submit(f"new-{i:03d}")
    emu.advance(600)
    runs = {
        "BatchListJobsOperator": lambda: BatchListJobsOperator(task_id="l", job_queue="queue", created_after=today),
        "BatchCheckJobsOperator": lambda: BatchCheckJobsOperator(task_id="c", job_queue="queue", created_after=today),
    }
    print(f"\nListJobs calls, created_after=today on a queue of {JOBS:,} older jobs and {TODAY} of today's")
    print("| class | jobs returned | ListJobs | reading every page (page_stop off) |")
    print("|---|---|---|---|")
    with connected(emu):
        for name, make in runs.items():
            counts = []
            for patch in (contextlib.nullcontext(), mock.patch.object(JobListing, "page_stop", lambda self: None)):
                emu.reset_counters()
                with patch:
                    value = pushed(make().execute)
                counts.append(emu.calls.get("ListJobs", 0))
            print(f"| {name} | {len(value)} | {counts[0]} | {counts[1]} |")
    emu.stop()


def main() -> None:
    quiet()  # and the cuts' warnings too ("XCom holds 1000 job records; ..."): the table says so
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    list_calls()
    xcom_sizes()


if __name__ == "__main__":
    main()
