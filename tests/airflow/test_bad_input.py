"""Bad input: each case is caught as early as it can be (DAG parse, or after rendering before any AWS call, or at the
first answer from AWS), names the argument or the cause, and says what to change. README's "Bad input" table lists
every case here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_batch_jobs.operators.batch_jobs import BatchDescribeJobsOperator, BatchListJobsOperator
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

README = Path(__file__).resolve().parents[2] / "README.md"
ARN = "arn:aws:batch:us-east-1:123456789012:job-definition/etl:3"

# (README label, sensor keyword arguments, text the message must hold) -- all caught when the DAG is parsed
PARSE_TIME: list[tuple[str, dict[str, Any], str]] = [
    ("two selectors", {"job_queue": "q", "array_job_id": "a"}, "exactly one of job_queue"),
    ("no selector", {"job_queue": None}, "exactly one of job_queue"),
    ("empty job name", {"job_name": ""}, "job_name=''"),
    ("`*` inside a name", {"job_name": "etl*daily"}, "job_name='etl*daily'"),
    ("`*` alone as a name", {"job_name": "*"}, "job_name='*'"),
    ("`*` with a definition ARN", {"job_definition": ARN + "*"}, "'*' is not allowed with an ARN"),
    ("`min_jobs` < 0", {"min_jobs": -1}, "min_jobs=-1"),
    ("zero `poke_interval`", {"poke_interval": 0}, "poke_interval"),
    ("negative `poke_interval`", {"poke_interval": -5}, "poke_interval"),
    ("zero `timeout`", {"timeout": 0}, "timeout=0"),
    ("negative `timeout`", {"timeout": -1}, "timeout"),
    ("zero `runnable_timeout`", {"runnable_timeout": 0}, "runnable_timeout=0"),
    ("negative `max_poll_errors`", {"max_poll_errors": -1}, "max_poll_errors=-1"),
    (
        "`created_after` later than `created_before`",
        {"created_after": "2026-11-22T00:00:00Z", "created_before": "2026-11-21T00:00:00Z"},
        "created_after (2026-11-22",
    ),
    ("unparseable date", {"created_after": "last tuesday"}, "created_after='last tuesday' is not a date"),
    ("epoch seconds instead of ms", {"created_before": 1_700_000_000}, "looks like epoch seconds"),
    (
        "date as YYYYMMDD",
        {"created_after": "20261121"},
        "created_after='20261121' looks like a date (YYYYMMDD); pass '{{ ds }}'",
    ),
    ("non-integer exit code", {"skip_exit_codes": ["3"]}, "skip_exit_codes contains '3'"),
    ("overlapping exit codes", {"success_exit_codes": [0, 3], "skip_exit_codes": [3]}, "[3] are in both"),
    ("unknown `match`", {"match": "first"}, "match='first'"),
    ("unknown `xcom_detail`", {"xcom_detail": "everything"}, "xcom_detail='everything'"),
    (
        "`match='latest'` with `min_jobs` > 1",
        {"match": "latest", "min_jobs": 2},
        "match='latest' judges only the newest matching job, so min_jobs=2",
    ),
    (
        "ARN of another resource in `job_ids`",
        {"job_queue": None, "job_ids": ["arn:aws:batch:us-east-1:123456789012:job-queue/nightly"]},
        "not a job ARN",
    ),
]


@pytest.mark.parametrize(("label", "kwargs", "needle"), PARSE_TIME, ids=[c[0] for c in PARSE_TIME])
def test_caught_at_parse_time(label: str, kwargs: dict[str, Any], needle: str) -> None:
    kwargs = {"job_queue": "q", **kwargs}
    with pytest.raises(ValueError) as err:
        BatchJobsSensor(task_id="wait", **{k: v for k, v in kwargs.items() if v is not None or k != "job_queue"})
    assert needle in str(err.value)


def test_unknown_status_caught_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"job_status contains \['DONE'\]"):
        BatchListJobsOperator(task_id="list", job_queue="q", job_status=["SUCCEEDED", "DONE"])


# (README label, templated argument, what it rendered to, text the message must hold)
AFTER_RENDER: list[tuple[str, str, Any, str]] = [
    ("templated name rendering to `a*b`", "job_name", "a*b", "job_name='a*b'"),
    ("templated date rendering to garbage", "created_after", "None", "created_after='None' is not a date"),
    (
        "templated date rendering to YYYYMMDD (`{{ ds_nodash }}`)",
        "created_before",
        "20261121",
        "created_before='20261121' looks like a date (YYYYMMDD)",
    ),
    ("templated queue rendering to blank", "job_queue", " ", "job_queue=' '"),
]


@pytest.mark.parametrize(("label", "field", "rendered", "needle"), AFTER_RENDER, ids=[c[0] for c in AFTER_RENDER])
def test_templated_values_caught_after_render_before_any_call(
    emu: BatchEmulator, context: dict, label: str, field: str, rendered: Any, needle: str
) -> None:
    kwargs = {"job_queue": "queue", field: "{{ params.value }}"}
    sensor = BatchJobsSensor(task_id="wait", **kwargs)  # a template: not checked yet
    setattr(sensor, field, rendered)  # what Airflow rendered it to
    with pytest.raises(ValueError) as err:
        sensor.poke(context)
    assert needle in str(err.value)
    assert emu.calls == {}  # caught before any AWS call


def test_more_than_100_ids_are_chunked_not_an_error(emu: BatchEmulator, context: dict) -> None:
    ids = [emu.submit(f"many-{i}") for i in range(250)]
    records = BatchDescribeJobsOperator(task_id="describe", job_ids=ids).execute(context)
    assert len(records) == 250
    assert emu.calls == {"DescribeJobs": 3}


def test_unknown_queue_fails_at_once(emu: BatchEmulator, context: dict) -> None:
    with pytest.raises(AirflowFailException, match=r"rejected the request.*nope"):
        BatchJobsSensor(task_id="wait", job_queue="nope").poke(context)
    assert emu.calls == {"ListJobs": 1}  # not retried


def test_access_denied_fails_at_once(emu: BatchEmulator, context: dict) -> None:
    emu.inject("*", "denied")
    with pytest.raises(AirflowFailException, match=r"rejected the request.*AccessDeniedException"):
        BatchJobsSensor(task_id="wait", job_queue="queue").poke(context)
    assert emu.calls == {"ListJobs": 1}  # neither botocore nor the sensor retries it


def test_readme_lists_every_case() -> None:
    readme = README.read_text()
    labels = [c[0] for c in PARSE_TIME] + [c[0] for c in AFTER_RENDER]
    labels += ["unknown status", "more than 100 ids", "unknown queue", "access denied"]
    missing = [label for label in labels if f"| {label} |" not in readme]
    assert not missing, f"README's bad-input table lacks {missing}"
