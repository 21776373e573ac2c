"""The trigger's event at 10,000 jobs (an array: 2,000 children): what Airflow stores in its metadata database (and
logs, on one line, in the task log), before #14 (the full event: every record) and after (the compact event: the jobs
the worker reads back named by id), and the DescribeJobs calls with which the worker rebuilds the full one.

Each verdict is judged on an in-process emulator by the blocking path (the trigger judges alike) and checked: the
worker's rebuilt event equals the full one.
    .venv/bin/python -m benchmarks.trigger_event
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.verdict_event import compact_event, resolve_event, verdict_event
from airflow_batch_jobs.watch import JobWatch
from benchmarks.common import connected, quiet

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_batch_jobs.policy import Decision

JOBS = 10_000
# The emulator lists a big array's children slowly (minutes at 10,000): the array row is smaller; its event is one run
# of ids whatever the size.
ARRAY = 2_000
DETAILS = ("summary", "full", "none")


def all_succeeded(emu: BatchEmulator) -> Decision:
    for i in range(JOBS):
        emu.submit(f"etl-{i:05d}")
    emu.advance(600)
    return judged(Policy.build(min_jobs=JOBS), job_queue="queue")


def thousand_failed(emu: BatchEmulator) -> Decision:
    emu.add_outcome({"attempts": [{"exit_code": 2, "reason": "AccessDenied: s3://reports"}]}, name="etl-*7")
    for i in range(JOBS):
        emu.submit(f"etl-{i:05d}")
    emu.advance(600)
    return judged(Policy.build(min_jobs=JOBS, fail_fast=False, max_failed_jobs=10), job_queue="queue")


def array_children(emu: BatchEmulator) -> Decision:
    parent = emu.submit("fan", arrayProperties={"size": ARRAY})
    emu.advance(600)
    return judged(Policy.build(), array_job_id=parent)


def failed_while_the_rest_run(emu: BatchEmulator) -> Decision:
    emu.add_outcome({"attempts": [{"exit_code": 1, "duration": 10}]}, name="etl-00000")
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 3600}]}, name="etl-*")
    for i in range(JOBS):
        emu.submit(f"etl-{i:05d}")
    emu.advance(120)
    return judged(Policy.build(), job_queue="queue")


def judged(policy: Policy, **query: Any) -> Decision:
    decision = JobWatch(JobQuery.build(**query), policy).poll(BatchJobsHook())
    assert decision.verdict.value != "waiting", decision.message
    return decision


SCENARIOS: dict[str, Callable[[BatchEmulator], Decision]] = {
    f"{JOBS:,} jobs succeeded": all_succeeded,
    f"{JOBS:,} jobs, 1,000 failed (fail_fast=False)": thousand_failed,
    f"an array of {ARRAY:,} children": array_children,
    f"1 failed while {JOBS - 1:,} still run (fail_fast)": failed_while_the_rest_run,
}


def size(event: dict[str, Any]) -> str:
    n = len(json.dumps(event).encode())
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def main() -> None:
    quiet()
    print(f"The trigger's event (JSON) at {JOBS:,} jobs (the array: {ARRAY:,} children), before #14 and after")
    print("| verdict | xcom_detail | xcom_max_jobs | records | full event (before) | compact event (after) | "
          "DescribeJobs to rebuild |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, scenario in SCENARIOS.items():
        with BatchEmulator() as emu, connected(emu):
            emu.setup()
            decision = scenario(emu)
            for detail in DETAILS:
                for bound in (1000, JOBS):
                    full = verdict_event(decision, detail, bound)
                    compact = compact_event(decision, detail, bound)
                    emu.reset_counters()
                    assert resolve_event(compact, BatchJobsHook(), detail) == full, (name, detail, bound)
                    calls = emu.calls.get("DescribeJobs", 0)
                    print(
                        f"| {name}: {decision.verdict.value} | {detail} | {bound:,} | {len(full['records']):,} | "
                        f"{size(full)} | {size(compact)} | {calls} |"
                    )


if __name__ == "__main__":
    main()
