"""The hook a failure report reads its jobs' CloudWatch log lines with."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

from airflow_batch_jobs.hooks.caller import QuickCaller
from airflow_batch_jobs.hooks.models import SharedModels


class FailureLogsHook(QuickCaller, SharedModels, AwsLogsHook):
    """The amazon provider's ``AwsLogsHook``, its client's models parsed once per process: a report makes a client per
    region, in the process whose task has already made its Batch client."""
