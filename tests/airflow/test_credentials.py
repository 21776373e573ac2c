"""AWS credentials never reach the logs, even with botocore at DEBUG (which logs signed requests)."""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

ACCESS_KEY = "AKIAMARKEDACCESSKEY1"
SECRET_KEY = "MARKED/SECRET+KEY/2"
SESSION_TOKEN = "MARKEDSESSIONTOKEN3"


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
    event = await anext(trigger.run())  # async path: aiobotocore
    assert event.payload["status"] == "success"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Calculating signature" in logged and "Sending http request" in logged  # DEBUG really was on
    assert "x-amz-security-token:***" in logged.lower()
    for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN):
        assert secret not in logged
