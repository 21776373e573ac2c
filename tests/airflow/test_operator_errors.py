"""The operators fail a request botocore refuses to send as the sensor and the trigger do (watch.rejected_request): at
once, without Airflow's retries (the same request is refused on every retry, and AWS never sees it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_batch_jobs.operators.batch_jobs import (
    BatchCheckJobsOperator,
    BatchDescribeJobsOperator,
    BatchListJobsOperator,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator

    from airflow_batch_jobs.testing import BatchEmulator


def _string_where_an_integer_goes(params: dict[str, Any], **_: Any) -> dict[str, Any]:
    return {**params, "maxResults": "100"}  # botocore's model wants an integer: ParamValidationError, nothing sent


def _not_a_list_of_ids(params: dict[str, Any], **_: Any) -> dict[str, Any]:
    return {**params, "jobs": 5}  # botocore's model wants a list of strings


@pytest.mark.parametrize(
    ("task", "operation", "refuse"),
    [
        (BatchListJobsOperator(task_id="l", job_queue="queue"), "ListJobs", _string_where_an_integer_goes),
        (BatchCheckJobsOperator(task_id="c", job_queue="queue"), "ListJobs", _string_where_an_integer_goes),
        (BatchDescribeJobsOperator(task_id="d", job_ids=["some-id"]), "DescribeJobs", _not_a_list_of_ids),
        (BatchDescribeJobsOperator(task_id="d", job_ids=["x"], check=True), "DescribeJobs", _not_a_list_of_ids),
    ],
    ids=["list", "check", "describe", "describe-check"],
)
def test_a_request_botocore_refuses_to_send_fails_without_retry(
    emu: BatchEmulator, context: dict, task: BaseOperator, operation: str, refuse: Any
) -> None:
    """Before: 'Could not read the jobs from AWS Batch' (AirflowException), left to Airflow's retries."""
    emu.submit("job")
    task.hook.conn.meta.events.register(f"provide-client-params.batch.{operation}", refuse)  # type: ignore[attr-defined]
    with pytest.raises(AirflowFailException) as err:
        task.execute(context)
    message = str(err.value)
    assert "botocore refused to send the request" in message, message
    assert "Could not read the jobs" not in message
    assert emu.calls == {}  # never sent
