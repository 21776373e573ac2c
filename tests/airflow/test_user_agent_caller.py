"""The user agent's ``Caller/`` name: our hooks find the one the amazon provider finds, without ``inspect.stack``."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.hooks.events_queue import EventsQueueHook
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor


def both_names(hook: Any) -> tuple[str, str]:
    """The amazon provider's caller name and ours, from the same frame."""
    return AwsBaseHook._get_caller(hook), hook._get_caller()


class SubmittingOperator:
    def execute(self, context: Any) -> tuple[str, str]:
        return both_names(BatchJobsHook(aws_conn_id=None))


class PokingSensor(BatchJobsSensor):
    def poke(self, context: Any) -> Any:
        return both_names(EventsQueueHook(aws_conn_id=None))


class BaseSensorOperator:  # the amazon provider looks further, for `poke`, when `execute` is this class's
    def execute(self, context: Any) -> tuple[str, str]:
        return PokingSensor.poke(self, context)  # type: ignore[arg-type]


class Wrapper:
    def execute(self, context: Any) -> tuple[str, str]:
        return SubmittingOperator().execute(context)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: SubmittingOperator().execute({}), "SubmittingOperator"),
        (lambda: Wrapper().execute({}), "SubmittingOperator"),  # the newest frame running `execute`
        (lambda: BaseSensorOperator().execute({}), "BaseSensorOperator"),  # `poke` runs with the same `self`
        (lambda: both_names(BatchJobsHook(aws_conn_id=None)), "Unknown"),
    ],
)
def test_the_caller_is_the_one_the_amazon_provider_names(call: Any, expected: str) -> None:
    amazons, ours = call()
    assert ours == amazons == expected


def test_an_execute_frame_without_self_is_unknown_as_in_the_amazon_provider() -> None:
    def execute() -> tuple[str, str]:
        return both_names(BatchJobsHook(aws_conn_id=None))

    assert execute() == ("Unknown", "Unknown")


def test_the_user_agent_of_a_client_names_the_operator() -> None:
    class NamingOperator:
        def execute(self) -> str:
            return BatchJobsHook(aws_conn_id=None, region_name="us-east-1")._get_config().user_agent_extra

    assert "Caller/NamingOperator" in NamingOperator().execute()
