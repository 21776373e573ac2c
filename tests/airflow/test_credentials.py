"""AWS credentials never reach the logs, even with botocore at DEBUG (which logs signed requests)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

from airflow_batch_jobs.log_redaction import BatchBodyRedactor
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import SharedPoll

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

ACCESS_KEY = "AKIAMARKEDACCESSKEY1"
SECRET_KEY = "MARKED/SECRET+KEY/2"
SESSION_TOKEN = "MARKEDSESSIONTOKEN3"


async def _no_stagger(seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
def marked_connection(batch_emulator: BatchEmulator) -> Any:
    conn = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {"region_name": "us-east-1", "endpoint_url": batch_emulator.endpoint_url,
                  "aws_session_token": SESSION_TOKEN},
    }  # fmt: skip
    with mock.patch.dict(os.environ, {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn)}):
        yield


@pytest.mark.usefixtures("marked_connection")
async def test_no_credential_in_debug_logs(batch_emulator: BatchEmulator, caplog: pytest.LogCaptureFixture) -> None:
    batch_emulator.submit("job")
    batch_emulator.advance(120)
    caplog.set_level(logging.DEBUG)
    sensor = BatchJobsSensor(task_id="wait", job_queue="queue", job_name="job")
    assert sensor.poke({"ti": mock.MagicMock()})  # sync path: boto3
    trigger = BatchJobsTrigger(query=sensor.build_query().to_dict(), policy=sensor.policy.to_dict())
    with mock.patch.object(SharedPoll, "sleep", staticmethod(_no_stagger)):
        event = await anext(trigger.run())  # async path: aiobotocore
    assert event.payload["status"] == "success"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Calculating signature" in logged and "Sending http request" in logged  # DEBUG really was on
    assert "x-amz-security-token:***" in logged.lower()
    for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN):
        assert secret not in logged


ENV_VALUE = "MARKED-ENV-VALUE-4"
PARAM_VALUE = "MARKED-PARAM-VALUE-5"
SECRET_FROM = "arn:aws:secretsmanager:us-east-1:123456789012:secret:MARKED-SECRET-6"
TASK_ENV_VALUE = "MARKED-TASK-ENV-VALUE-7"


@pytest.mark.usefixtures("batch_aws_conn")
async def test_no_job_secret_in_debug_logs_on_either_path(
    batch_emulator: BatchEmulator, batch_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore logs DescribeJobs bodies as ``%r`` (bytes repr), aiobotocore as ``%s``: both are redacted."""
    secrets = [{"name": "DB_PASSWORD", "valueFrom": SECRET_FROM}]
    batch_client.register_job_definition(
        jobDefinitionName="with-secrets",
        type="container",
        parameters={"token": PARAM_VALUE},
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "secrets": secrets},
    )
    task = {"name": "main", "image": "busybox", "environment": [{"name": "API_KEY", "value": TASK_ENV_VALUE}]}
    batch_client.register_job_definition(
        jobDefinitionName="ecs-with-secrets",
        type="container",
        platformCapabilities=["FARGATE"],
        ecsProperties={"taskProperties": [{"containers": [{**task, "secrets": secrets}]}]},
    )
    overrides = {"environment": [{"name": "TOKEN", "value": ENV_VALUE}]}
    batch_emulator.submit("leaky", definition="with-secrets", containerOverrides=overrides)
    batch_emulator.submit("leaky-ecs", definition="ecs-with-secrets")
    batch_emulator.advance(120)
    caplog.set_level(logging.DEBUG)
    sensor = BatchJobsSensor(task_id="wait", job_queue="queue", job_name="leaky*", xcom_detail="full")
    assert sensor.poke({"ti": mock.MagicMock()})  # sync path: boto3
    sync_logged = "\n".join(r.getMessage() for r in caplog.records)
    caplog.clear()
    trigger = BatchJobsTrigger(query=sensor.build_query().to_dict(), policy=sensor.policy.to_dict())
    with mock.patch.object(SharedPoll, "sleep", staticmethod(_no_stagger)):
        event = await anext(trigger.run())  # async path: aiobotocore
    assert event.payload["status"] == "success"
    async_logged = "\n".join(r.getMessage() for r in caplog.records)
    for path, logged in (("sync", sync_logged), ("async", async_logged)):
        assert "Response body" in logged and "DB_PASSWORD" in logged and "API_KEY" in logged, path  # bodies logged
        for secret in (ENV_VALUE, PARAM_VALUE, SECRET_FROM, TASK_ENV_VALUE):
            assert secret not in logged, (path, secret)


@pytest.mark.parametrize("message", ["Response body:\n%r", "Response body:\n%s"], ids=["botocore", "aiobotocore"])
def test_body_redactor_keeps_each_format(message: str) -> None:
    body = {
        "jobs": [{"parameters": {"p": PARAM_VALUE}, "container": {"environment": [{"name": "E", "value": ENV_VALUE}]}}]
    }
    record = logging.LogRecord(
        "botocore.parsers", logging.DEBUG, __file__, 1, message, (json.dumps(body).encode(),), None
    )
    BatchBodyRedactor().filter(record)
    logged = record.getMessage()
    assert logged.startswith("Response body:\nb'{") and '"name": "E"' in logged
    assert PARAM_VALUE not in logged and ENV_VALUE not in logged
