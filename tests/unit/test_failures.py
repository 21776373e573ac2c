"""Failure classes from the reasons AWS documents: each class, the order in which the reasons are read, the message
and the XCom records that carry them."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batch_jobs.failures import FailureClass, count_classes, diagnose_attempts, diagnose_job
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.policy import Policy, failure_message

OOM = "OutOfMemoryError: Container killed due to memory usage"
SPOT = "Host EC2 (instance i-0123456789abcdef0) terminated."
PULL = "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found"
TIMEOUT = "Job attempt duration exceeded timeout"
EXITED = "Essential container in task exited"


def attempt(exit_code: int | None = None, reason: str | None = None, status_reason: str = EXITED) -> dict[str, Any]:
    container: dict[str, Any] = {"logStreamName": "etl/default/abc"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    if reason is not None:
        container["reason"] = reason
    return {"container": container, "statusReason": status_reason, "startedAt": 1, "stoppedAt": 2}


def job(*attempts: dict[str, Any], status: str = "FAILED", **fields: Any) -> JobView:
    last_reason = attempts[-1]["statusReason"] if attempts else None
    raw = {
        "jobId": "j-1",
        "jobName": "etl",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/nightly",
        "status": status,
        "statusReason": fields.pop("statusReason", last_reason),
        "attempts": list(attempts),
        **fields,
    }
    return JobView(raw)


@pytest.mark.parametrize(
    ("attempts", "fields", "expected"),
    [
        pytest.param([attempt(None, None, SPOT)], {}, FailureClass.INFRASTRUCTURE, id="spot-reclaim"),
        pytest.param([attempt(137, None, SPOT)], {}, FailureClass.INFRASTRUCTURE, id="spot-reclaim-killed"),
        pytest.param([attempt(None, PULL, "Task failed to start")], {}, FailureClass.INFRASTRUCTURE, id="pull"),
        pytest.param(
            [attempt(None, "CannotStartContainerError: failed to get container status", "Task failed to start")],
            {},
            FailureClass.INFRASTRUCTURE,
            id="cannot-start",
        ),
        pytest.param(
            [attempt(None, "ResourceInitializationError: unable to pull secrets or registry auth")],
            {},
            FailureClass.INFRASTRUCTURE,
            id="resource-initialization",
        ),
        pytest.param([attempt(None, None, "Task failed to start")], {}, FailureClass.INFRASTRUCTURE, id="not-started"),
        pytest.param([attempt(137, OOM)], {}, FailureClass.OUT_OF_MEMORY, id="oom"),
        pytest.param([attempt(137, "OOMKilled")], {}, FailureClass.OUT_OF_MEMORY, id="oom-eks"),
        pytest.param([attempt(137, None, TIMEOUT)], {}, FailureClass.TIMEOUT, id="timeout-sigkill"),
        pytest.param([attempt(137, OOM, TIMEOUT)], {}, FailureClass.TIMEOUT, id="timeout-before-oom"),
        pytest.param([attempt(143)], {"isTerminated": True}, FailureClass.CANCELLED, id="terminated"),
        pytest.param([attempt(137, OOM)], {"isCancelled": True}, FailureClass.CANCELLED, id="cancelled-in-retry"),
        pytest.param([], {"statusReason": "Dependent Job failed"}, FailureClass.CANCELLED, id="dependency"),
        pytest.param([attempt(2, "AccessDenied: s3://x")], {}, FailureClass.APPLICATION, id="exit-code"),
        pytest.param([attempt(137)], {}, FailureClass.APPLICATION, id="sigkill-without-oom-reason"),
        pytest.param([attempt(None)], {}, FailureClass.UNKNOWN, id="no-exit-code-no-reason"),
        pytest.param([], {"statusReason": "Array Child Job failed"}, FailureClass.UNKNOWN, id="array-parent"),
        pytest.param([], {}, FailureClass.UNKNOWN, id="nothing-said"),
        # Where the service writes the cause in a status reason rather than the container's reason (Fargate), or
        # only in the job's status reason while the attempt shows an exit code or nothing.
        pytest.param([attempt(None, None, PULL)], {}, FailureClass.INFRASTRUCTURE, id="pull-in-attempt-status"),
        pytest.param([attempt(None, None, EXITED)], {"statusReason": PULL}, FailureClass.INFRASTRUCTURE, id="pull-job"),
        pytest.param(
            [],
            {"statusReason": "ResourceInitializationError: unable to pull secrets or registry auth"},
            FailureClass.INFRASTRUCTURE,
            id="resource-initialization-job-only",
        ),
        pytest.param([attempt(137)], {"statusReason": TIMEOUT}, FailureClass.TIMEOUT, id="timeout-job-reason"),
        pytest.param([attempt(None)], {"statusReason": TIMEOUT}, FailureClass.TIMEOUT, id="timeout-job-no-code"),
        pytest.param([attempt(None)], {"statusReason": SPOT}, FailureClass.INFRASTRUCTURE, id="spot-job-reason"),
        pytest.param([attempt(2)], {"statusReason": EXITED}, FailureClass.APPLICATION, id="exit-code-job-exited"),
    ],
)
def test_each_failure_class(attempts: list[dict[str, Any]], fields: dict[str, Any], expected: FailureClass) -> None:
    diagnosis = diagnose_job(job(*attempts, **fields))
    assert diagnosis is not None and diagnosis.failure_class is expected
    assert diagnosis.advice  # every class says what to do


def test_the_reason_sharpens_the_advice() -> None:
    pull = diagnose_job(job(attempt(None, PULL, "Task failed to start")))
    spot = diagnose_job(job(attempt(None, None, SPOT)))
    assert pull is not None and "image" in pull.advice and "registry" in pull.advice
    assert spot is not None and "Spot" in spot.advice and "Host EC2*" in spot.advice


def test_only_failed_jobs_and_attempts_have_a_class() -> None:
    succeeded = job(attempt(None, None, SPOT), attempt(0), status="SUCCEEDED")
    assert diagnose_job(succeeded) is None
    classes = [d.failure_class if d else None for d in diagnose_attempts(succeeded)]
    assert classes == [FailureClass.INFRASTRUCTURE, None]  # the retried attempt failed; the last did not


def test_a_stop_classes_the_last_attempt_only() -> None:
    """A job terminated in its second attempt: the first attempt's out-of-memory kill stays what it was."""
    terminated = job(attempt(137, OOM), attempt(143, None, "stopped by the on-call"), isTerminated=True)
    classes = [d.failure_class if d else None for d in diagnose_attempts(terminated)]
    assert classes == [FailureClass.OUT_OF_MEMORY, FailureClass.CANCELLED]


def test_the_summary_line_counts_the_classes_most_frequent_first() -> None:
    jobs = [
        job(attempt(2)),
        job(attempt(None, None, SPOT)),
        job(attempt(None, PULL, "Task failed to start")),
    ]
    assert count_classes(jobs) == "2 infrastructure, 1 application"
    message = failure_message(jobs, 5, Policy.build())
    assert message.splitlines()[0] == "3 of 5 AWS Batch job(s) failed (tolerated: 0): 2 infrastructure, 1 application."


def test_the_message_names_each_attempts_class_and_what_to_do() -> None:
    view = job(attempt(137, OOM), attempt(3, "bad input row 17"))
    message = failure_message([view], 1, Policy.build())
    lines = message.splitlines()
    assert lines[2].startswith("    attempt 1: exit code 137") and lines[2].endswith("[out of memory]")
    assert lines[3].startswith("    attempt 2: exit code 3") and lines[3].endswith("[application]")
    assert lines[4].startswith("    => application: the job's own code exited with a non-zero exit code")


def test_records_carry_the_class_of_the_job_and_of_each_attempt() -> None:
    record = job(attempt(137, OOM), attempt(None, None, SPOT)).to_record()
    assert record["failure_class"] == "infrastructure"
    assert [a["failure_class"] for a in record["attempts"]] == ["out_of_memory", "infrastructure"]
    assert job(attempt(0), status="SUCCEEDED").to_record()["failure_class"] is None
