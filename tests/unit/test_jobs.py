from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from airflow_batch_jobs.jobs import REDACTED, JobView, redact
from airflow_batch_jobs.policy import Policy, failure_message

# The DescribeJobs example of the AWS boto3 reference page (where it comes from: the file's header).
DESCRIBE_JOBS_EXAMPLE = Path(__file__).resolve().parent / "data" / "describe_jobs_example.txt"


def _seed_expected_output() -> dict:
    """The "Expected Output" of the DescribeJobs example in the AWS reference page, parsed as Python."""
    text = DESCRIBE_JOBS_EXAMPLE.read_text()
    block = text.split("Expected Output:", 1)[1]
    block = re.sub(r"'ResponseMetadata': \{.*?\},", "", block, flags=re.S)
    return ast.literal_eval(block.strip())


def test_seed_describe_jobs_example_through_the_view() -> None:
    (raw,) = _seed_expected_output()["jobs"]
    job = JobView(raw)
    assert job.job_id == "24fa2d7a-64c4-49d2-8b47-f8da4fbde8e9"
    assert job.job_name == "example"
    assert job.status == "SUCCEEDED" and job.is_terminal and not job.is_active
    assert job.final_exit_code == 0
    assert job.job_queue == "arn:aws:batch:us-east-1:012345678910:job-queue/HighPriority"
    assert [a.exit_code for a in job.attempts] == [0]
    record = job.to_record()
    assert record["created_at"] == 1480460782010 and record["stopped_at"] == 1480460880699
    json.dumps(record)  # JSON-native


def test_attempts_in_container_shape_last_attempt_decides() -> None:
    job = JobView(
        {
            "jobId": "j",
            "jobName": "n",
            "status": "SUCCEEDED",
            "attempts": [
                {
                    "container": {"exitCode": 137, "reason": "OOM", "logStreamName": "s/1"},
                    "statusReason": "x",
                },
                {"container": {"exitCode": 0, "logStreamName": "s/2"}, "startedAt": 5, "stoppedAt": 9},
            ],
            "container": {"exitCode": 0, "logStreamName": "s/2"},
        }
    )
    assert [(a.index, a.exit_code, a.reason) for a in job.attempts] == [(0, 137, "OOM"), (1, 0, None)]
    assert job.final_exit_code == 0 and job.log_stream == "s/2"
    assert "exit code 137" in job.attempts[0].describe() and "'OOM'" in job.attempts[0].describe()


def test_ecs_task_properties_exit_code_is_the_first_nonzero_container() -> None:
    job = JobView(
        {
            "jobId": "j",
            "jobName": "n",
            "status": "FAILED",
            "attempts": [
                {
                    "taskProperties": [
                        {
                            "containers": [
                                {"name": "side", "exitCode": 0, "logStreamName": "side/1"},
                                {"name": "main", "exitCode": 3, "reason": "bad", "logStreamName": "main/1"},
                            ]
                        }
                    ]
                }
            ],
        }
    )
    assert job.final_exit_code == 3 and job.final_reason == "bad" and job.log_stream == "main/1"


def test_eks_attempts() -> None:
    job = JobView(
        {
            "jobId": "j",
            "jobName": "n",
            "status": "FAILED",
            "eksAttempts": [{"containers": [{"exitCode": 2, "reason": "Error"}], "podName": "pod-1"}],
        }
    )
    assert job.final_exit_code == 2 and job.log_stream == "pod-1"


def test_summary_without_exit_code_has_no_attempts() -> None:
    job = JobView({"jobId": "j", "jobName": "n", "status": "RUNNING"})
    assert job.attempts == () and job.final_exit_code is None and job.is_active


def test_redaction_hides_environment_secrets_and_parameters_everywhere() -> None:
    raw = {
        "jobId": "j",
        "parameters": {"password": "p4ss"},
        "container": {
            "environment": [{"name": "TOKEN", "value": "s3cret"}],
            "secrets": [{"name": "DB", "valueFrom": "arn:aws:secretsmanager:x"}],
        },
        "ecsProperties": {"taskProperties": [{"containers": [{"environment": [{"name": "K", "value": "v1"}]}]}]},
        "eksProperties": {"podProperties": {"containers": [{"env": [{"name": "E", "value": "v2"}]}]}},
    }
    out = redact(raw)
    text = json.dumps(out)
    for secret in ("p4ss", "s3cret", "arn:aws:secretsmanager:x", "v1", "v2"):
        assert secret not in text
    assert out["container"]["environment"] == [{"name": "TOKEN", "value": REDACTED}]
    assert out["parameters"] == {"password": REDACTED}
    assert raw["container"]["environment"][0]["value"] == "s3cret"  # the original is untouched


def ecs_job(status: str, containers: list[dict], flags: dict[str, bool]) -> JobView:
    """An ECS-properties JobDetail: the attempt's containers, and the job definition's ``essential`` flags."""
    definition = [{"name": name, **({"essential": flag} if flag is not None else {})} for name, flag in flags.items()]
    return JobView(
        {
            "jobId": "j",
            "jobName": "n",
            "status": status,
            "ecsProperties": {"taskProperties": [{"containers": definition}]},
            "attempts": [{"taskProperties": [{"containers": containers}]}],
        }
    )


def test_ecs_the_essential_container_decides_not_a_sidecar_stopped_by_the_task() -> None:
    sidecar_first = [
        {"name": "envoy", "exitCode": 137, "logStreamName": "envoy/1"},
        {"name": "main", "exitCode": 4, "reason": "partial", "logStreamName": "main/1"},
    ]
    job = ecs_job("FAILED", sidecar_first, {"envoy": False, "main": None})  # no flag: essential (ECS default)
    assert job.final_exit_code == 4 and job.final_reason == "partial" and job.log_stream == "main/1"
    assert Policy.build(success_exit_codes=[4]).outcome(job) == "success"  # the sidecar does not defeat it
    stopped = [{"name": "main", "exitCode": 0}, {"name": "envoy", "exitCode": 143}]
    succeeded = ecs_job("SUCCEEDED", stopped, {"main": True, "envoy": False})
    assert succeeded.final_exit_code == 0
    assert Policy.build(skip_exit_codes=[143]).outcome(succeeded) == "success"  # nor fails / skips a job
    assert "container 'main'" in succeeded.attempts[0].describe()


def test_ecs_a_non_essential_exit_code_is_not_a_success_exit_code() -> None:
    containers = [{"name": "warmup", "exitCode": 4}, {"name": "main", "exitCode": 1, "reason": "boom"}]
    job = ecs_job("FAILED", containers, {"warmup": False, "main": True})
    assert job.final_exit_code == 1
    assert Policy.build(success_exit_codes=[4]).outcome(job) == "failure"


def test_ecs_without_flags_every_container_is_essential() -> None:
    job = ecs_job("FAILED", [{"name": "a", "exitCode": 0}, {"name": "b", "exitCode": 2}], {})
    assert job.final_exit_code == 2


def test_eks_a_failing_init_container_is_the_attempt_s_outcome() -> None:
    job = JobView(
        {
            "jobId": "j",
            "jobName": "n",
            "status": "FAILED",
            "eksAttempts": [
                {
                    "initContainers": [{"name": "fetch", "exitCode": 1, "reason": "AccessDenied: s3://in"}],
                    "containers": [{"name": "main"}],  # never started
                    "podName": "pod-1",
                }
            ],
        }
    )
    assert job.final_exit_code == 1 and job.final_reason == "AccessDenied: s3://in"
    message = failure_message([job], 1, Policy.build())
    assert "attempt 1: exit code 1 (init container 'fetch')" in message and "AccessDenied: s3://in" in message
    assert job.to_record()["attempts"][0]["container"] == "fetch"


def test_a_summary_record_claims_no_attempt_it_does_not_know() -> None:
    """A ListJobs summary of a job that ran twice (137, then 0): the container is the last attempt's, startedAt the
    first's. Its record says how the job ended and leaves attempts, log stream and queue out."""
    summary = {
        "jobArn": "arn:aws:batch:us-east-1:123456789012:job/j",
        "jobId": "j",
        "jobName": "retried",
        "status": "SUCCEEDED",
        "createdAt": 1,
        "startedAt": 10,  # the first attempt's
        "stoppedAt": 20,
        "container": {"exitCode": 0},
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/jd:1",
    }
    job = JobView(summary)
    record = job.to_record()
    assert record["described"] is False and record["final_exit_code"] == 0 and record["started_at"] == 10
    assert not {"attempts", "log_stream", "job_queue"} & set(record)
    (last,) = job.attempts  # the verdict still reads how it ended, as the last attempt, unnumbered and untimed
    assert (last.index, last.exit_code, last.started_at, last.stopped_at) == (None, 0, None, None)
    assert last.describe().startswith("last attempt: exit code 0")
    described = JobView({**summary, "jobQueue": "q", "attempts": [{"container": {"exitCode": 137}}]}).to_record()
    assert described["described"] is True and described["job_queue"] == "q"
    assert [a["index"] for a in described["attempts"]] == [0]


def logged(**raw: object) -> JobView:
    base = {"jobArn": "arn:aws:batch:eu-west-3:123456789012:job/j", "jobId": "j", "jobQueue": "q", "status": "FAILED"}
    return JobView({**base, **raw})


def test_cloudwatch_log_follows_the_log_configuration() -> None:
    options = {"awslogs-group": "/etl", "awslogs-region": "eu-west-1"}
    container = {
        "exitCode": 1,
        "logStreamName": "s/1",
        "logConfiguration": {"logDriver": "awslogs", "options": options},
    }
    assert logged(container=container).cloudwatch_log() == {
        "awslogs_group": "/etl",
        "awslogs_region": "eu-west-1",
        "awslogs_stream_name": "s/1",
    }
    plain = logged(container={"exitCode": 1, "logStreamName": "s/1"}).cloudwatch_log()
    assert plain == {"awslogs_group": None, "awslogs_region": "eu-west-3", "awslogs_stream_name": "s/1"}  # defaults
    splunk = {**container, "logConfiguration": {"logDriver": "splunk"}}
    assert logged(container=splunk).cloudwatch_log() is None
    assert logged(eksAttempts=[{"containers": [{"exitCode": 1}], "podName": "pod"}]).cloudwatch_log() is None
    assert JobView({"jobId": "j", "status": "FAILED", "container": {"exitCode": 1}}).cloudwatch_log() is None


def test_cloudwatch_log_of_an_ecs_job_is_the_deciding_container_s() -> None:
    definition = [
        {"name": "sidecar", "essential": False, "logConfiguration": {"options": {"awslogs-group": "/side"}}},
        {"name": "main", "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/main"}}},
    ]
    attempt = {
        "taskProperties": [
            {
                "containers": [
                    {"name": "sidecar", "exitCode": 137, "logStreamName": "side/1"},
                    {"name": "main", "exitCode": 2, "logStreamName": "main/1"},
                ]
            }
        ]
    }
    job = logged(ecsProperties={"taskProperties": [{"containers": definition}]}, attempts=[attempt])
    log = job.cloudwatch_log()
    assert log is not None and (log["awslogs_group"], log["awslogs_stream_name"]) == ("/main", "main/1")
