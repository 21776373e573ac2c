"""The connection arguments are templated as the amazon provider templates its operators' (``aws_template_fields``:
``aws_conn_id``, ``region_name``, ``verify``; ``botocore_config`` too), and the hook is made from the rendered values:
a DAG can pick the connection or the region per run (``{{ params.aws_conn_id }}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_batch_jobs.operators.batch_jobs import (
    BatchCheckJobsOperator,
    BatchDescribeJobsOperator,
    BatchListJobsOperator,
)
from airflow_batch_jobs.query import InvalidQueryError
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

CONNECTION_FIELDS = ("aws_conn_id", "region_name", "verify", "botocore_config")
CLASSES = (BatchJobsSensor, BatchListJobsOperator, BatchDescribeJobsOperator, BatchCheckJobsOperator)
TEMPLATED = {
    "aws_conn_id": "{{ params.conn }}",
    "region_name": "{{ params.region }}",
    "verify": "{{ params.verify }}",
    "botocore_config": {"retries": {"mode": "{{ params.retry_mode }}", "total_max_attempts": 2}},
}
PARAMS = {"conn": "batch_per_run", "region": "eu-west-1", "verify": "False", "retry_mode": "standard"}


@pytest.fixture
def per_run_connection(batch_emulator: BatchEmulator, monkeypatch: pytest.MonkeyPatch) -> BatchEmulator:
    """The emulator behind a connection named only by the rendered template (no aws_default: an unrendered conn id
    finds nothing)."""
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_BATCH_PER_RUN", batch_emulator.airflow_connection())
    return batch_emulator


def rendered(task: Any) -> Any:
    task.render_template_fields({"params": PARAMS})
    return task


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_class_templates_the_amazon_provider_s_connection_fields(cls: type) -> None:
    assert set(aws_template_fields()) <= set(CONNECTION_FIELDS) <= set(cls.template_fields)
    assert "botocore_config" in cls.template_fields


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_hook_is_made_from_the_rendered_values(per_run_connection: BatchEmulator, cls: type) -> None:
    """Before: aws_conn_id was no template field, so the hook looked up a connection called '{{ params.conn }}'."""
    selector = {"job_ids": ["x"]} if cls is BatchDescribeJobsOperator else {"job_queue": "queue"}
    task = rendered(cls(task_id="t", **selector, **TEMPLATED))
    assert (task.aws_conn_id, task.region_name, task.verify) == ("batch_per_run", "eu-west-1", False)
    assert task.botocore_config == {"retries": {"mode": "standard", "total_max_attempts": 2}}
    hook = task.hook
    assert (hook.aws_conn_id, hook.region_name, hook.conn_region_name) == ("batch_per_run", "eu-west-1", "eu-west-1")
    assert hook.config.retries == {"mode": "standard", "total_max_attempts": 2}


def test_a_sensor_polls_and_defers_on_the_rendered_connection(per_run_connection: BatchEmulator, context: dict) -> None:
    emu = per_run_connection
    emu.submit("etl")
    poking = rendered(BatchJobsSensor(task_id="s", job_queue="queue", **TEMPLATED))
    assert poking.poke(context) is False  # listed through the rendered connection: one active job
    assert emu.calls.get("ListJobs")
    deferring = rendered(BatchJobsSensor(task_id="s", job_queue="queue", deferrable=True, **TEMPLATED))
    with pytest.raises(TaskDeferred) as deferred:
        deferring.execute(context)
    _, kwargs = deferred.value.trigger.serialize()
    assert (kwargs["aws_conn_id"], kwargs["region_name"], kwargs["verify"]) == ("batch_per_run", "eu-west-1", False)
    assert kwargs["botocore_config"] == {"retries": {"mode": "standard", "total_max_attempts": 2}}


def test_a_templated_botocore_config_may_render_to_its_json_text() -> None:
    """What ``{{ var.value.batch_config }}`` renders to without native rendering."""
    task = BatchJobsSensor(task_id="s", job_queue="queue", botocore_config="{{ params.cfg }}", verify="{{ params.v }}")
    task.render_template_fields({"params": {"cfg": '{"read_timeout": 30}', "v": "/etc/ssl/bundle.pem"}})
    assert task.botocore_config == {"read_timeout": 30}
    assert task.verify == "/etc/ssl/bundle.pem"  # any other string is a CA bundle path, as botocore reads it


@pytest.mark.parametrize(
    ("argument", "value", "needle"),
    [
        ("botocore_config", "standard", "botocore_config='standard': give a dict of botocore Config options"),
        ("botocore_config", ["retries"], "botocore_config=['retries']: give a dict"),
        ("verify", 1, "verify=1: give True, False, None or the path of a CA bundle"),
        ("aws_conn_id", 5, "aws_conn_id=5: give a string"),
    ],
)
def test_a_connection_argument_that_cannot_work_is_named(argument: str, value: Any, needle: str) -> None:
    with pytest.raises(InvalidQueryError, match=needle.replace("[", r"\[").replace("]", r"\]")):  # parse time
        BatchJobsSensor(task_id="s", job_queue="queue", **{argument: value})
    task = BatchCheckJobsOperator(task_id="c", job_queue="queue", **{argument: "{{ params.value }}"})  # stands aside
    if isinstance(value, str):
        with pytest.raises(InvalidQueryError, match=needle):  # first render, before any AWS call
            task.render_template_fields({"params": {"value": value}})
