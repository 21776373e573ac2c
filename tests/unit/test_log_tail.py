"""Where a failed job logged, as the verdict event carries it: the stream and the attempt that wrote it, the group and
region of its logConfiguration, and why there is nothing to read when there is not."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.log_tail import LogSource, log_sources, source_of
from airflow_batch_jobs.policy import Policy, judge

ARN = "arn:aws:batch:eu-west-1:123456789012:job/j-1"
QUEUE = "arn:aws:batch:eu-west-1:123456789012:job-queue/nightly"


def attempt(stream: str | None, exit_code: int = 1) -> dict[str, Any]:
    container: dict[str, Any] = {"exitCode": exit_code}
    if stream:
        container["logStreamName"] = stream
    return {"container": container, "statusReason": "Essential container in task exited"}


def detail(*attempts: dict[str, Any], **fields: Any) -> JobView:
    raw = {"jobId": "j-1", "jobArn": ARN, "jobName": "etl", "jobQueue": QUEUE, "status": "FAILED"}
    raw.update(attempts=list(attempts), container=fields.pop("container", {}), **fields)
    return JobView(raw)


def test_the_last_attempts_stream_in_the_default_group_and_the_jobs_region() -> None:
    source = source_of(detail(attempt("etl/default/a"), attempt("etl/default/b")))
    assert (source.attempt, source.stream, source.group, source.region) == (
        2,
        "etl/default/b",
        "/aws/batch/job",
        "eu-west-1",
    )
    assert source.missing is None
    assert LogSource.from_dict(source.to_dict()) == source  # JSON-native, through the trigger's event


def test_the_log_configuration_names_group_and_region() -> None:
    options = {"awslogs-group": "/etl", "awslogs-region": "us-west-2"}
    job = detail(attempt("etl/default/a"), container={"logConfiguration": {"logDriver": "awslogs", "options": options}})
    assert (source_of(job).group, source_of(job).region) == ("/etl", "us-west-2")


def test_an_earlier_attempts_stream_is_labelled_with_that_attempt() -> None:
    """The last attempt names no stream (its container never started): the lines shown are the first attempt's, and
    say so."""
    source = source_of(detail(attempt("etl/default/a"), attempt(None)))
    assert (source.attempt, source.stream) == (1, "etl/default/a")


@pytest.mark.parametrize(
    ("job", "why"),
    [
        (detail(attempt("etl/default/a"), container={"logConfiguration": {"logDriver": "splunk"}}), "elsewhere"),
        (detail(eksAttempts=[{"containers": [{"exitCode": 1}], "podName": "p"}], eksProperties={}), "EKS"),
        (detail(arrayProperties={"size": 4}, statusReason="Array Child Job failed"), "include_array_children"),
        (detail(), "no attempt ran"),
        (JobView({"jobId": "j-1", "jobName": "etl", "status": "FAILED", "container": {"exitCode": 1}}), "summary"),
        (JobView({"jobId": "p:3", "jobName": "fan", "status": "FAILED", "agedOutOfListJobs": True}), "aged out"),
    ],
)
def test_why_there_is_nothing_to_read(job: JobView, why: str) -> None:
    source = source_of(job)
    assert source.stream is None and source.missing is not None and why in source.missing


def test_the_event_names_failed_jobs_failed_first_or_the_skip_code_jobs() -> None:
    ok = JobView({"jobId": "ok", "jobName": "ok", "status": "SUCCEEDED", "jobQueue": QUEUE, "attempts": []})
    bad = detail(attempt("etl/default/a"))
    failure = judge([ok, bad], Policy.build(), now_ms=0)
    assert [s["job_id"] for s in log_sources(failure)] == ["j-1"]
    nodata = detail(attempt("etl/default/n", exit_code=3))
    skip = judge([ok, nodata], Policy.build(skip_exit_codes=[3]), now_ms=0)
    assert [s["stream"] for s in log_sources(skip)] == ["etl/default/n"]
    assert log_sources(judge([ok], Policy.build(), now_ms=0)) == []
