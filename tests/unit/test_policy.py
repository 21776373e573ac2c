"""The verdict's ordering rules, pure (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.policy import InvalidPolicyError, Policy, Verdict, judge


def job(job_id: str, status: str, exit_code: int | None = None) -> JobView:
    detail: dict[str, Any] = {"jobId": job_id, "jobName": job_id, "status": status}
    if exit_code is not None:
        detail["container"] = {"exitCode": exit_code}
    return JobView(detail)


def test_without_fail_fast_a_failure_waits_for_min_jobs() -> None:
    jobs = [job("a", "SUCCEEDED", 0), job("b", "FAILED", 1)]
    patient = Policy.build(min_jobs=3, fail_fast=False)
    assert judge(jobs, patient, now_ms=0).verdict is Verdict.WAITING  # a third job is still expected
    assert judge([*jobs, job("c", "SUCCEEDED", 0)], patient, now_ms=0).verdict is Verdict.FAILURE
    assert judge(jobs, Policy.build(min_jobs=3), now_ms=0).verdict is Verdict.FAILURE  # fail_fast decides at once


def test_without_fail_fast_a_failure_waits_for_active_jobs() -> None:
    jobs = [job("a", "RUNNING"), job("b", "FAILED", 1)]
    assert judge(jobs, Policy.build(fail_fast=False), now_ms=0).verdict is Verdict.WAITING
    assert judge(jobs, Policy.build(), now_ms=0).verdict is Verdict.FAILURE


def test_a_job_seen_twice_counts_once() -> None:
    """An array child named in job_ids next to its parent reaches the verdict twice (once as a child)."""
    jobs = [job("a", "SUCCEEDED", 0), job("b", "FAILED", 1), job("b", "FAILED", 1)]
    decision = judge(jobs, Policy.build(max_failed_jobs=1), now_ms=0)
    assert decision.verdict is Verdict.SUCCESS and [j.job_id for j in decision.jobs] == ["a", "b"]
    assert decision.counts == {"SUCCEEDED": 1, "FAILED": 1}


def test_latest_with_min_jobs_above_one_only_counts_array_children() -> None:
    with pytest.raises(InvalidPolicyError, match="min_jobs=3 can never be reached"):
        Policy.build(match="latest", min_jobs=3)
    assert Policy.build(match="latest", min_jobs=3, include_array_children=True).min_jobs == 3  # the newest array's
    assert Policy.build(match="latest", min_jobs=0).min_jobs == 0
