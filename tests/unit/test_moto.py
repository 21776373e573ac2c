"""Under moto's in-process ``mock_aws`` (what many users test their DAGs with) the hook and the sensor work for what
moto supports: the JOB_NAME filter and DescribeJobs. Moto is not the reference for semantics (no pagination, every
filter but JOB_NAME ignored, jobs finish at submit without Docker), so only what it does model is asserted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def batch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"batch": {"use_docker": False}}):
        iam = boto3.client("iam")
        role = iam.create_role(RoleName="batch", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        client = boto3.client("batch")
        env = client.create_compute_environment(computeEnvironmentName="moto-ce", type="UNMANAGED", serviceRole=role)
        client.create_job_queue(
            jobQueueName="queue",
            priority=1,
            state="ENABLED",
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}],
        )
        client.register_job_definition(
            jobDefinitionName="jobdef",
            type="container",
            containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
        )
        yield client


def submit(client: Any, name: str) -> str:
    return str(client.submit_job(jobName=name, jobQueue="queue", jobDefinition="jobdef")["jobId"])


def test_hook_lists_by_name_and_describes_under_moto(batch: Any) -> None:
    ids = [submit(batch, f"nightly-{i}") for i in range(3)]
    submit(batch, "other")
    hook = BatchJobsHook(aws_conn_id=None, region_name="us-east-1")
    found = hook.find_jobs(JobQuery.build(job_queue="queue", job_name="nightly-*"))
    assert sorted(j["jobId"] for j in found) == sorted(ids)
    described = hook.describe_jobs([*ids, ids[0]])
    assert [d["jobId"] for d in described.jobs] == ids and described.missing == []
    assert hook.describe_jobs(["no-such-job"]).missing == ["no-such-job"]


def test_sensor_succeeds_and_pushes_records_under_moto(batch: Any) -> None:
    ids = [submit(batch, f"etl-{i}") for i in range(2)]
    submit(batch, "unrelated")
    sensor = BatchJobsSensor(task_id="wait", job_queue="queue", job_name="etl-*", min_jobs=2, aws_conn_id=None)
    result = sensor.poke({"ti": mock.MagicMock()})
    assert result and sorted(r["job_id"] for r in result.xcom_value) == sorted(ids)
    assert all(r["status"] == "SUCCEEDED" for r in result.xcom_value)
    waiting = BatchJobsSensor(task_id="wait3", job_queue="queue", job_name="etl-*", min_jobs=3, aws_conn_id=None)
    assert not waiting.poke({"ti": mock.MagicMock()})  # two of the three expected jobs: keep waiting
