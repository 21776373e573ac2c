"""Event-driven waits (#17): ``BatchJobsSensor(deferrable=True, events_queue_url=...)``. Job state-change events wake
a confirming listing; the verdict comes from that listing, judged as polling judges it; polling is the safety net at
10x ``poke_interval``.

On the emulator with events on (moto's SQS server on 127.0.0.1, the emulator publishing each status change as
EventBridge delivers it): the shared poll's sleeps move the emulated clock in small steps, and after each step the
test waits (in real time, asserting nothing about it) until the consumer has taken every published message off the
queue, so that an event is read at the emulated moment it was sent. Every figure asserted is emulated.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_batch_jobs.query import InvalidQueryError
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/batch-job-events"


# -- the argument ---------------------------------------------------------------------------------------------------
def test_events_queue_url_without_deferrable_names_both_arguments() -> None:
    with pytest.raises(InvalidQueryError, match=r"events_queue_url=.*deferrable is False.*deferrable=True"):
        BatchJobsSensor(task_id="t", job_queue="queue", events_queue_url=URL)
    with pytest.raises(InvalidQueryError, match="deferrable=True"):  # a template too: it can only render to a URL
        BatchJobsSensor(task_id="t", job_queue="queue", deferrable=False, events_queue_url="{{ var.value.q }}")
    with (
        mock.patch("airflow_batch_jobs.sensors.batch_jobs.conf.getboolean", return_value=False),
        pytest.raises(InvalidQueryError, match="deferrable is False"),
    ):  # deferrable=None follows [operators] default_deferrable
        BatchJobsSensor(task_id="t", job_queue="queue", events_queue_url=URL)
    BatchJobsSensor(task_id="t", job_queue="queue", events_queue_url=None)  # no events: nothing to say
    BatchJobsSensor(task_id="t", job_queue="queue", events_queue_url="")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("arn:aws:sqs:us-east-1:123456789012:batch-job-events", f"is the queue's ARN; give its URL, e.g. '{URL}'"),
        ("batch-job-events", "aws sqs get-queue-url --queue-name batch-job-events"),
        ("https://sqs.us-east-1.amazonaws.com/batch-job-events", "not an SQS queue URL"),
        (["https://sqs.us-east-1.amazonaws.com/123456789012/q"], "as a string"),
    ],
)
def test_a_plain_value_that_is_no_queue_url_fails_at_parse_time(value: Any, says: str) -> None:
    with pytest.raises(InvalidQueryError, match="events_queue_url=") as err:
        BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url=value)
    assert says in str(err.value)


def test_a_template_is_checked_once_rendered() -> None:
    sensor = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url="{{ params.q }}")
    with pytest.raises(InvalidQueryError, match="is the queue's ARN"):
        sensor.render_template_fields({"params": {"q": "arn:aws:sqs:us-east-1:123456789012:batch-job-events"}})
    sensor = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url="{{ params.q }}")
    sensor.render_template_fields({"params": {"q": f" {URL} "}})
    assert sensor.events_queue_url == URL
    sensor = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url="{{ params.q }}")
    sensor.render_template_fields({"params": {"q": ""}})  # a Variable left empty: polling only
    assert not sensor.events_queue_url
    assert "events_queue_url" in BatchJobsSensor.template_fields


@pytest.mark.usefixtures("batch_aws_conn")
def test_the_trigger_carries_the_queue_url_in_its_kwargs(batch_emulator: Any) -> None:
    """Serialized with the rest, so that a restarted triggerer rebuilds an event-driven trigger."""
    batch_emulator.script_job(batch_emulator.submit("job"), {"attempts": [{"duration": 600}]})
    batch_emulator.advance(10)
    sensor = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url=URL)
    with pytest.raises(TaskDeferred) as deferral:
        sensor.execute({})
    _, kwargs = deferral.value.trigger.serialize()
    assert kwargs["events_queue_url"] == URL
    polling = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True)
    with pytest.raises(TaskDeferred) as deferral:
        polling.execute({})
    assert deferral.value.trigger.serialize()[1]["events_queue_url"] is None
