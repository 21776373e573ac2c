"""The arguments every sensor and operator of this provider shares: the query, the policy, the connection.

Plain values are checked when the DAG is parsed; templated ones (Jinja strings, XComArgs) after rendering, before
any AWS call. Either way the error names the argument and what to change.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import InvalidPolicyError, Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.watch import XCOM_DETAILS

QUERY_FIELDS = (
    "job_queue",
    "array_job_id",
    "multi_node_job_id",
    "job_ids",
    "job_name",
    "job_definition",
    "created_after",
    "created_before",
    "share_identifier",
)
POLICY_FIELDS = (
    "match",
    "min_jobs",
    "success_exit_codes",
    "skip_exit_codes",
    "max_failed_jobs",
    "fail_fast",
    "include_array_children",
    "runnable_timeout",
)


def is_templated(value: Any) -> bool:
    """A value Airflow will still render: a Jinja string, an XComArg, or a list holding one."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list | tuple):
        return any(is_templated(v) for v in value)
    return hasattr(value, "resolve")  # XComArg / PlainXComArg


def check_xcom_arguments(xcom_detail: str, xcom_max_jobs: int) -> None:
    if xcom_detail not in XCOM_DETAILS:
        raise InvalidPolicyError(f"xcom_detail={xcom_detail!r}: use one of {', '.join(XCOM_DETAILS)}.")
    if isinstance(xcom_max_jobs, bool) or not isinstance(xcom_max_jobs, int) or xcom_max_jobs < 1:
        raise InvalidPolicyError(f"xcom_max_jobs={xcom_max_jobs!r}: use a whole number >= 1.")


class BatchJobsArgumentsMixin:
    """Holds the query arguments verbatim (templated fields) and the connection arguments; builds the query after
    rendering and the hook lazily, on first use."""

    job_queue: str | None
    array_job_id: str | None
    multi_node_job_id: str | None
    job_ids: Any
    job_name: str | None
    job_definition: str | None
    created_after: Any
    created_before: Any
    share_identifier: str | None
    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None

    def _set_query_arguments(self, values: dict[str, Any]) -> None:
        for name in QUERY_FIELDS:
            setattr(self, name, values[name])
        if not any(is_templated(v) for v in values.values()):
            JobQuery.build(**values)  # plain values: fail at DAG parse time

    def _set_connection_arguments(
        self, aws_conn_id: str | None, region_name: str | None, verify: bool | str | None, botocore_config: Any
    ) -> None:
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    def build_query(self) -> JobQuery:
        """The query from the rendered arguments (raises InvalidQueryError naming the argument)."""
        return JobQuery.build(**{name: getattr(self, name) for name in QUERY_FIELDS})

    @cached_property
    def hook(self) -> BatchJobsHook:
        return BatchJobsHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify, config=self.botocore_config
        )


def build_policy(values: dict[str, Any]) -> Policy:
    return Policy.build(**{name: values[name] for name in POLICY_FIELDS})


def finish(task: Any, context: Any, event: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Turn a verdict event into the task's outcome: records returned (success), or pushed then skip / fail.

    Returns None while the verdict is still 'waiting'. Failed jobs make the task fail without Airflow retries
    (a retry would see the same failed jobs); ``soft_fail`` on a sensor turns that into a skip.
    """
    from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

    from airflow_batch_jobs.links import persist_links

    status = event.get("status")
    if status == "waiting":
        return None
    if status == "error":
        raise AirflowFailException(event.get("message", "the wait failed"))
    records = event.get("records", [])
    if event.get("cut"):
        task.log.warning(
            "XCom holds %d job records; %d more were left out (xcom_max_jobs).", len(records), event["cut"]
        )
    persist_links(context, task, task.hook, records, event.get("failed", 0))
    if status == "success":
        task.log.info(event["message"])
        return records
    if task.do_xcom_push and task.xcom_detail != "none":
        context["ti"].xcom_push(key="return_value", value=records)
    if status == "skip":
        raise AirflowSkipException(event["message"])
    raise AirflowFailException(event["message"])
