"""The progress line says what changed since the last poll: a job that went RUNNING -> FAILED showed as
"(0 new since last poll)", as if nothing had happened."""

from __future__ import annotations

from typing import Any

from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.watch import JobWatch


def job(job_id: str, status: str) -> dict[str, Any]:
    return {"jobId": job_id, "jobName": "etl", "status": status, "createdAt": 1}


def progress_after(*polls: list[dict[str, Any]]) -> list[str]:
    watch = JobWatch(JobQuery.build(job_queue="nightly", job_name="etl*"), Policy.build(), clock=lambda: 1000)
    lines = []
    for jobs in polls:
        watch.observe(jobs)
        lines.append(watch.progress(watch.decide(jobs)))
    return lines


def test_a_job_that_failed_since_the_last_poll_is_said_to_have_finished() -> None:
    first, second = progress_after(
        [job("a", "RUNNING"), job("b", "SUCCEEDED")], [job("a", "FAILED"), job("b", "SUCCEEDED")]
    )
    assert first.endswith("(since last poll: 2 new)")
    assert "2 jobs — 1 SUCCEEDED, 1 FAILED (since last poll: 1 finished (1 RUNNING → FAILED))" in second
    assert "0 new" not in second


def test_new_jobs_finished_jobs_and_other_moves_each_say_so() -> None:
    polls = [
        [job("a", "RUNNABLE"), job("b", "RUNNABLE"), job("c", "RUNNING"), job("d", "RUNNING")],
        [job("a", "RUNNING"), job("b", "RUNNING"), job("c", "SUCCEEDED"), job("d", "FAILED"), job("e", "SUBMITTED")],
        [job("a", "RUNNABLE"), job("b", "RUNNING"), job("c", "SUCCEEDED"), job("d", "FAILED"), job("e", "SUBMITTED")],
        [job("a", "RUNNABLE"), job("b", "RUNNING"), job("c", "SUCCEEDED"), job("d", "FAILED"), job("e", "SUBMITTED")],
    ]
    _, moved, retried, still = progress_after(*polls)
    assert moved.endswith(
        "(since last poll: 1 new; 2 finished (1 RUNNING → SUCCEEDED, 1 RUNNING → FAILED); 2 RUNNABLE → RUNNING)"
    )
    assert retried.endswith("(since last poll: 1 RUNNING → RUNNABLE)")  # a retry sends a job back
    assert still.endswith("(no change since last poll)")


def test_a_job_missing_from_one_listing_is_not_new_when_it_comes_back() -> None:
    *_, back = progress_after(
        [job("a", "RUNNING"), job("b", "RUNNING")], [job("a", "RUNNING")], [job("a", "RUNNING"), job("b", "SUCCEEDED")]
    )
    assert back.endswith("(since last poll: 1 finished (1 RUNNING → SUCCEEDED))")
