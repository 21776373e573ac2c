"""What differs between Airflow 2.11 and the latest 3.x, held to the same behaviour on whichever version runs these
tests (CI runs them on the lowest dependencies, on Airflow 2.11, 3.0 and the latest: .ci/matrix)."""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import airflow
import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException

from airflow_batch_jobs.compat import AIRFLOW_2_TRIGGER_TIMEOUT, DEFERRAL_TIMEOUTS, TaskDeferralError
from airflow_batch_jobs.policy import InvalidPolicyError
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from tests.compat.airflow_versions import dag_bag, timed_out_trigger

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
AIRFLOW_2 = airflow.__version__.startswith("2.")


def sensor(**kwargs: Any) -> BatchJobsSensor:
    return BatchJobsSensor(task_id="wait", job_queue="queue", deferrable=True, timeout=900, **kwargs)


def test_the_trigger_timeout_is_recognised_as_this_airflow_reports_it() -> None:
    if AIRFLOW_2:  # 2.11 has no TaskDeferralTimeout: its scheduler fails the task with this error
        from airflow.jobs import scheduler_job_runner

        assert DEFERRAL_TIMEOUTS == ()
        assert f'"error": "{AIRFLOW_2_TRIGGER_TIMEOUT}"' in inspect.getsource(scheduler_job_runner)
    else:
        assert [cls.__name__ for cls in DEFERRAL_TIMEOUTS] == ["TaskDeferralTimeout"]


def test_a_deferral_past_the_timeout_is_a_sensor_timeout_which_airflow_does_not_retry() -> None:
    """On 2.11 Airflow itself raises TaskDeferralError (retried as any error, so the wait would start over)."""
    with pytest.raises(AirflowSensorTimeout):
        sensor().resume_execution(*timed_out_trigger(), {})


def test_a_deferral_past_the_timeout_with_soft_fail_is_a_skip() -> None:
    """On 3.0-3.2 Airflow itself fails such a sensor."""
    with pytest.raises(AirflowSkipException):
        sensor(soft_fail=True).resume_execution(*timed_out_trigger(), {})


def test_a_trigger_that_failed_otherwise_stays_an_error_airflow_retries() -> None:
    method, _ = timed_out_trigger()
    with pytest.raises(TaskDeferralError) as err:
        sensor().resume_execution(method, {"error": "Trigger failure"}, {})
    assert not isinstance(err.value, AirflowSensorTimeout)


def test_the_verdict_of_a_resumed_sensor_is_unchanged() -> None:
    event = {"status": "skip", "message": "1 job ended with a skip exit code (3)", "records": []}
    with pytest.raises(AirflowSkipException, match="skip exit code"):
        sensor(do_xcom_push=False).resume_execution("execute_complete", {"event": event}, {})


@pytest.mark.parametrize("name", ["poke_interval", "timeout"])
@pytest.mark.parametrize("value", [-5, dt.timedelta(seconds=-5), 0])
def test_a_poke_interval_or_timeout_that_is_not_positive_is_named_before_airflow_checks_it(
    name: str, value: Any
) -> None:
    """Airflow < 3.2 rejects a negative one in BaseSensorOperator, with an AirflowException and another message."""
    with pytest.raises(InvalidPolicyError, match=rf"^{name}=.*: use a positive number of seconds"):
        BatchJobsSensor(task_id="wait", job_queue="queue", **{name: value})


# Example DAGs of features Airflow 2 lacks: they fail to import there, with this in the error
AIRFLOW_3_ONLY = {"example_asset_on_job_completion": "airflow.sdk"}  # AssetWatcher (event-driven scheduling): 3.0+


def test_every_example_dag_parses_on_this_airflow() -> None:
    bag = dag_bag(EXAMPLES)
    refused = {Path(path).stem: error for path, error in bag.import_errors.items()}
    if AIRFLOW_2:
        assert set(refused) == set(AIRFLOW_3_ONLY)
        assert all(AIRFLOW_3_ONLY[stem] in error for stem, error in refused.items()), refused
    else:
        assert refused == {}
    expected = {p.stem for p in EXAMPLES.glob("example_*.py")} - (set(AIRFLOW_3_ONLY) if AIRFLOW_2 else set())
    assert set(bag.dag_ids) == expected


@pytest.mark.parametrize(
    "dag_run",
    [
        SimpleNamespace(run_after=dt.datetime(2026, 3, 1, 6, tzinfo=dt.UTC), logical_date=None),  # 3.x, no logical
        SimpleNamespace(logical_date=dt.datetime(2026, 3, 1, 6, tzinfo=dt.UTC)),  # 2.11: no run_after
    ],
    ids=["airflow-3-run", "airflow-2-run"],
)
def test_the_nightly_window_renders_from_either_version_s_dag_run(dag_run: SimpleNamespace) -> None:
    dag = dag_bag(EXAMPLES).dags["example_nightly_etl"]
    template = dag.get_task("wait_for_nightly_etl").created_after
    macros = SimpleNamespace(timedelta=dt.timedelta)
    rendered = dag.get_template_env().from_string(template).render(dag_run=dag_run, macros=macros)
    assert rendered == "2026-02-28 18:00:00+00:00"
