"""The hook the job-event consumer reads its SQS queue with."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.sqs import SqsHook

from airflow_batch_jobs.hooks.caller import QuickCaller
from airflow_batch_jobs.hooks.models import SharedModels


class EventsQueueHook(QuickCaller, SharedModels, SqsHook):
    """The amazon provider's ``SqsHook``, its client's models parsed once per process and in a thread: the consumer
    makes its client again after each failure to read the queue, on the triggerer's event loop."""
