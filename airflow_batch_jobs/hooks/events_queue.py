"""The hook the job-event consumer reads its SQS queue with."""

from __future__ import annotations

from airflow.providers.amazon.aws.hooks.sqs import SqsHook

from airflow_batch_jobs.hooks.models import ModelsOffTheLoop


class EventsQueueHook(ModelsOffTheLoop, SqsHook):
    """The amazon provider's ``SqsHook``, its async client's models parsed in a thread once per process: the
    consumer makes its client again after each failure to read the queue, on the triggerer's event loop."""
