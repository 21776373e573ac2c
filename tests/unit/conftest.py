from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.stub import Stubber

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def hook_and_stub() -> Iterator[tuple[BatchJobsHook, Stubber]]:
    """A hook whose client answers only the calls queued on the Stubber, in order; any other call fails."""
    client = boto3.client("batch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    hook = BatchJobsHook(aws_conn_id=None, region_name="us-east-1")
    hook.__dict__["conn"] = client  # the cached client property
    with Stubber(client) as stub:
        yield hook, stub
        stub.assert_no_pending_responses()
