from __future__ import annotations

from typing import TYPE_CHECKING
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from airflow_batch_jobs.operators.batch_jobs import (
    BatchCheckJobsOperator,
    BatchDescribeJobsOperator,
    BatchListJobsOperator,
    ids_from,
)
from airflow_batch_jobs.query import InvalidQueryError
from airflow_batch_jobs.watch import JobWatch

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator


def test_list_statuses_latest_then_describe_records(emu: BatchEmulator, context: dict) -> None:
    ids = []
    for i in range(5):
        ids.append(emu.submit(f"job-{i}"))
        emu.advance(1)
    emu.advance(60)
    emu.submit("still-running")
    listed = BatchListJobsOperator(task_id="l", job_queue="queue", job_status=["SUCCEEDED"], latest=3).execute(context)
    assert [r["job_id"] for r in listed] == ids[::-1][:3]  # newest first, finished only
    described = BatchDescribeJobsOperator(task_id="d", job_ids=listed, xcom_detail="full").execute(context)
    assert [r["job_id"] for r in described] == [r["job_id"] for r in listed]
    assert described[0]["detail"]["jobQueue"].endswith("job-queue/queue")


def test_describe_reports_missing_ids_and_checks_policy(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="bad")
    bad = emu.submit("bad")
    emu.advance(60)
    with pytest.raises(AirflowFailException, match="unknown to AWS Batch: nope"):
        BatchDescribeJobsOperator(task_id="d", job_ids=[bad, "nope"], fail_on_missing=True).execute(context)
    with pytest.raises(AirflowFailException, match=f"bad \\({bad}\\): FAILED"):
        BatchDescribeJobsOperator(task_id="d", job_ids=[bad], check=True).execute(context)


def test_check_operator_active_skip_and_success(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 3}]}, name="nodata")
    emu.submit("nodata")
    with pytest.raises(AirflowFailException, match="Not decided yet"):
        BatchCheckJobsOperator(task_id="c", job_queue="queue").execute(context)
    with pytest.raises(AirflowSkipException, match="Not decided yet"):
        BatchCheckJobsOperator(task_id="c", job_queue="queue", if_active="skip").execute(context)
    emu.advance(60)
    with pytest.raises(AirflowSkipException, match="skip exit code"):
        BatchCheckJobsOperator(task_id="c", job_queue="queue", skip_exit_codes=[3]).execute(context)
    result = BatchCheckJobsOperator(task_id="c", job_queue="queue", success_exit_codes=[3]).execute(context)
    assert result[0]["final_exit_code"] == 3


def test_ids_from_accepts_ids_records_and_rendered_strings() -> None:
    assert ids_from(["a", "b", "a"]) == ["a", "b"]
    assert ids_from([{"job_id": "a"}, {"jobId": "b"}]) == ["a", "b"]
    assert ids_from("['a', 'b']") == ["a", "b"]
    assert ids_from("a") == ["a"]
    with pytest.raises(InvalidQueryError, match="job_ids contains 5"):
        ids_from([5])


def test_bad_operator_arguments_at_parse_time() -> None:
    with pytest.raises(InvalidQueryError, match="job_status contains \\['DONE'\\]"):
        BatchListJobsOperator(task_id="l", job_queue="q", job_status=["DONE"])
    with pytest.raises(ValueError, match="if_active='wait'"):
        BatchCheckJobsOperator(task_id="c", job_queue="q", if_active="wait")
    with pytest.raises(ValueError, match="latest=0"):
        BatchListJobsOperator(task_id="l", job_queue="q", latest=0)


def test_describe_accepts_job_arns(emu: BatchEmulator, context: dict) -> None:
    job = emu.submit("by-arn")
    emu.advance(60)
    arn = f"arn:aws:batch:us-east-1:123456789012:job/{job}"
    described = BatchDescribeJobsOperator(task_id="d", job_ids=[arn], fail_on_missing=True).execute(context)
    assert [r["job_id"] for r in described] == [job]
    assert ids_from([arn, job, {"job_id": arn}]) == [job]


def test_ids_from_rejects_arns_of_other_resources() -> None:
    queue_arn = "arn:aws:batch:us-east-1:123456789012:job-queue/nightly"
    with pytest.raises(InvalidQueryError, match=r"job_ids contains 'arn:.*job-queue/nightly': not a job ARN"):
        ids_from([queue_arn])


def test_check_operator_does_not_blame_aws_for_a_bug_in_our_code(emu: BatchEmulator, context: dict) -> None:
    with mock.patch.object(JobWatch, "poll", side_effect=KeyError("jobId")), pytest.raises(KeyError):
        BatchCheckJobsOperator(task_id="c", job_queue="queue").execute(context)
