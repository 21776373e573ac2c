"""Every argument of the public classes is documented with ``:param`` in the class docstring, as the amazon provider
documents its operators (Airflow's docs and IDEs show them), and nothing documented is no argument (a renamed one)."""

from __future__ import annotations

import inspect
import re

import pytest
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.operators.batch_jobs import (
    BatchCheckJobsOperator,
    BatchDescribeJobsOperator,
    BatchListJobsOperator,
)
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.job_events import BatchJobsEventTrigger

PUBLIC = (
    BatchJobsSensor,
    BatchListJobsOperator,
    BatchDescribeJobsOperator,
    BatchCheckJobsOperator,
    BatchJobsTrigger,
    BatchJobsEventTrigger,
    BatchJobsHook,
)
# BatchJobsHook passes its arguments on to AwsBaseHook, fixing client_type (resource_type cannot go with it)
FIXED_BY_THE_HOOK = {"client_type", "resource_type"}
PARAM = re.compile(r"^\s*:param (\w+):\s*\S", re.MULTILINE)


def arguments(cls: type) -> set[str]:
    """The arguments its ``__init__`` takes by name; for BatchJobsHook, those it hands AwsBaseHook."""
    init = AwsBaseHook.__init__ if cls is BatchJobsHook else cls.__init__
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in inspect.signature(init).parameters.values() if p.kind in kinds} - {"self"}
    return names - FIXED_BY_THE_HOOK if cls is BatchJobsHook else names


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_every_argument_has_a_param_in_the_class_docstring(cls: type) -> None:
    documented = PARAM.findall(inspect.getdoc(cls) or "")
    assert len(documented) == len(set(documented)), f"{cls.__name__} documents an argument twice"
    missing = sorted(arguments(cls) - set(documented))
    stale = sorted(set(documented) - arguments(cls))
    assert not missing, f"{cls.__name__}: no :param for {missing}"
    assert not stale, f"{cls.__name__}: :param for {stale}, which it does not take"


def test_the_hook_s_arguments_are_those_it_hands_on() -> None:
    """The hook takes ``*args, **kwargs``: what it accepts is what AwsBaseHook accepts, client_type aside."""
    signature = inspect.signature(BatchJobsHook.__init__)
    assert [p.kind for p in signature.parameters.values()][1:] == [
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    ]
    assert arguments(BatchJobsHook) == {"aws_conn_id", "region_name", "verify", "config"}
