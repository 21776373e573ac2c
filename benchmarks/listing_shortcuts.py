"""Benchmark 1b: ListJobs calls the listing shortcuts save, each measured beside the same wait without it.

- Array children: a parent of N children finishing progressively, ``include_array_children=True``. Children are
  listed only in the statuses the parent's ``statusSummary`` shows changed, beside every status every poll.
- Incremental listing: a queue holding 10,000 jobs finished two hours ago and 100 of today's finishing
  progressively. ``created_after`` = today: paging stops at the first page that reaches older jobs. Every job of the
  queue (no filter, ``min_jobs``): paging stops where every older job is known finished. Beside reading every page.
    .venv/bin/python -m benchmarks.listing_shortcuts
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from unittest import mock

from airflow_batch_jobs.query import ALL_STATUSES
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.watch import JobListing
from benchmarks.common import INTERVAL, SPAN, connected, quiet

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

ARRAY_SIZES = (1_000, 10_000)
HISTORY = 10_000
TODAY = 100
GROUPS = 20


def wait(emu: BatchEmulator, sensor: BatchJobsSensor) -> tuple[int, int, int]:
    """Poke every interval until the verdict: (ListJobs, polls, jobs in the verdict)."""
    emu.reset_counters()
    with connected(emu):
        polls = 0
        while True:
            polls += 1
            result = sensor.poke({"ti": mock.MagicMock()})
            if result:
                return emu.calls.get("ListJobs", 0), polls, len(result.xcom_value)  # type: ignore[union-attr]
            emu.advance(INTERVAL)


def array_job(size: int) -> BatchEmulator:
    emu = BatchEmulator().start()
    emu.setup()
    step = size // GROUPS  # children finish in GROUPS waves over SPAN
    for group in range(GROUPS):
        script = {"attempts": [{"duration": 30 + (SPAN - 30) * group / (GROUPS - 1)}]}
        emu.add_outcome(script, name="fan", indices=range(group * step, (group + 1) * step))
    emu.submit("fan", arrayProperties={"size": size})
    return emu


def history_and_today() -> tuple[BatchEmulator, int]:
    emu = BatchEmulator().start()
    emu.setup()
    for i in range(HISTORY):
        emu.submit(f"old-{i:05d}")
    emu.advance(7200)
    today = emu.now_ms()
    for i in range(TODAY):
        emu.script_job(emu.submit(f"new-{i:03d}"), {"attempts": [{"duration": 30 + (SPAN - 30) * i / (TODAY - 1)}]})
    return emu, today


def every_status(self: JobListing, parent: dict[str, Any]) -> tuple[str, ...]:
    return ALL_STATUSES


def row(label: str, make: Callable[[], tuple[BatchEmulator, BatchJobsSensor]], without: AbstractContextManager) -> None:
    results = []
    for patch in (contextlib.nullcontext(), without):
        emu, sensor = make()
        with patch:
            results.append(wait(emu, sensor))
        emu.stop()
    (ours, polls, jobs), (full, full_polls, full_jobs) = results
    assert (jobs, polls) == (full_jobs, full_polls), "both waits must reach the same verdict at the same poll"
    print(f"| {label} | {jobs:,} | {polls} | {ours:,} | {ours / polls:.1f} | {full:,} | {full / polls:.1f} | "
          f"{ours / full:.2f} |")  # fmt: skip


def sensor(**kwargs: Any) -> BatchJobsSensor:
    return BatchJobsSensor(task_id="wait", job_queue="queue", poke_interval=INTERVAL, xcom_max_jobs=20_000, **kwargs)


def main() -> None:
    quiet()
    print("| wait | jobs | polls | ListJobs | per poll | without the shortcut | per poll | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for size in ARRAY_SIZES:
        row(
            f"array of {size:,} children",
            lambda size=size: (array_job(size), sensor(job_name="fan", include_array_children=True)),  # type: ignore[misc]
            mock.patch.object(JobListing, "child_statuses", every_status),
        )
    no_stop = mock.patch.object(JobListing, "page_stop", lambda self: None)

    def since_today() -> tuple[BatchEmulator, BatchJobsSensor]:
        emu, today = history_and_today()
        return emu, sensor(created_after=today)

    def whole_queue() -> tuple[BatchEmulator, BatchJobsSensor]:
        emu, _ = history_and_today()
        return emu, sensor(min_jobs=HISTORY + TODAY)

    row(f"created_after today ({HISTORY:,} older jobs in the queue)", since_today, no_stop)
    row(f"whole queue ({HISTORY:,} finished + {TODAY} running)", whole_queue, no_stop)


if __name__ == "__main__":
    main()
