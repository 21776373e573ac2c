"""The console links answer "" quietly while their XCom is absent: Airflow 3 asks every link for its URL whenever a try
ends (the Task SDK's ``finalize``), a deferral or a reschedule included, and the amazon link classes then read an XCom
that is pushed only with the verdict: the Task SDK logged ``XCom not found`` (an error) for each of the three links."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_batch_jobs.operators.batch_jobs import BatchCheckJobsOperator
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing.deferral import run_deferred

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_batch_jobs.testing import BatchEmulator

TI_KEY = mock.Mock(dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=1)


@pytest.fixture
def xcom_reads(context: dict) -> Iterator[mock.Mock]:
    """The XCom the amazon link classes read, as the Task SDK answers it: what the task pushed, else None after
    logging ``XCom not found`` (here: counted as a read of an absent key)."""
    pushed = context["ti"].pushed
    absent: list[str] = []

    def get_value(*, ti_key: Any, key: str) -> Any:
        if key not in pushed:
            absent.append(key)
        return pushed.get(key)

    with mock.patch("airflow.providers.amazon.aws.links.base_aws.XCom") as xcom:
        xcom.get_value.side_effect = get_value
        xcom.absent = absent
        yield xcom


def finalize(task: Any, links: Any = None) -> dict[str, str]:
    """What the Task SDK's ``finalize`` does with a task's links at the end of every try."""
    links = task.operator_extra_links if links is None else links
    return {link.name: link.get_link(operator=task, ti_key=TI_KEY) for link in links}


def test_a_deferred_sensor_s_links_read_nothing_until_its_verdict(
    emu: BatchEmulator, context: dict, xcom_reads: mock.Mock
) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 2, "duration": 120}]}, name="etl-bad")
    job = emu.submit("etl-bad")
    sensor = BatchJobsSensor(task_id="s", job_queue="queue", deferrable=True, poke_interval=30)
    with pytest.raises(TaskDeferred):
        sensor.execute(context)
    assert finalize(sensor) == {"Batch Job Details": "", "Batch Job Queue": "", "CloudWatch Events": ""}
    assert xcom_reads.absent == []  # before: batch_job_details, batch_job_queue, cloudwatch_events: 3 errors
    resumed = BatchJobsSensor(task_id="s", job_queue="queue", deferrable=True, poke_interval=30)
    with pytest.raises(AirflowFailException):
        run_deferred(resumed, emu, context)  # the verdict persists the links
    links = finalize(resumed)
    assert f"#jobs/detail/{job}" in links["Batch Job Details"]
    assert "#queues/detail/arn:aws:batch:us-east-1:" in links["Batch Job Queue"]
    assert "log-events/" in links["CloudWatch Events"] and "%2Faws%2Fbatch%2Fjob" in links["CloudWatch Events"]
    assert xcom_reads.absent == []


def test_a_waiting_poke_and_a_verdict_without_a_job_to_link_read_nothing(
    emu: BatchEmulator, context: dict, xcom_reads: mock.Mock
) -> None:
    emu.submit("etl-a")
    emu.submit("etl-b")
    sensor = BatchJobsSensor(task_id="s", job_queue="queue", mode="reschedule", poke_interval=30)
    assert sensor.poke(context) is False  # a reschedule try ends here
    assert set(finalize(sensor).values()) == {""}
    emu.advance(600)
    check = BatchCheckJobsOperator(task_id="c", job_queue="queue")
    assert len(check.execute(context)) == 2  # two jobs, none failed: no job to link to
    assert set(finalize(check).values()) == {""}
    assert xcom_reads.absent == []


def test_links_of_an_operator_not_running_here_read_xcom_as_the_amazon_classes_do(xcom_reads: mock.Mock) -> None:
    """Airflow 2's webserver hands links a deserialized operator, which knows nothing of what the task persisted."""
    deserialized = mock.Mock(spec=["task_id", "do_xcom_push"])
    assert set(finalize(deserialized, BatchJobsSensor.operator_extra_links).values()) == {""}
    assert sorted(xcom_reads.absent) == ["batch_job_details", "batch_job_queue", "cloudwatch_events"]
