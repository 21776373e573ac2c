"""Job state-change events in a real Airflow (api-server, scheduler, dag-processor, triggerer as separate processes):
jobs finishing in the emulator publish their events to its SQS queue, and the triggerer reads them.

- The AssetWatcher example: its BatchJobsEventTrigger fires for each job that succeeded and schedules
  example_asset_on_job_completion, whose task returns the job ids of the events it consumed.
- A deferred ``BatchJobsSensor(events_queue_url=...)`` (tests/e2e/dags/e2e_events.py), on the same queue in the
  same triggerer: its verdict comes from the listing the jobs' events ask for, long before its safety net.

Airflow >= 3.0 (Airflow 2 has no AssetWatcher)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_batch_jobs.testing import BatchEmulator
from tests.e2e.real_airflow import AIRFLOW_2, DAGS, Airflow, airflow_env, free_port, running

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(AIRFLOW_2, reason="AssetWatcher needs Airflow >= 3.0")]

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
DAG_ID = "example_asset_on_job_completion"
EVENTS_DAG = DAGS / "e2e_events.py"


@pytest.fixture(scope="module")
def emulator() -> Iterator[BatchEmulator]:
    with BatchEmulator(events=True) as emu:  # manual clock: jobs move only when the test says so
        emu.setup(queue="nightly")
        emu.setup(queue="events")
        yield emu


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, emulator: BatchEmulator) -> Iterator[Airflow]:
    home = tmp_path_factory.mktemp("asset_watcher")
    port = free_port()
    dags = home / "dags"
    dags.mkdir()
    for dag_file in (EXAMPLES / f"{DAG_ID}.py", EVENTS_DAG):
        shutil.copy(dag_file, dags)
    env = {
        **airflow_env(home, port, emulator.airflow_connection()),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "BATCH_EVENTS_QUEUE_URL": emulator.events_queue_url,  # read by both DAG files
    }
    with running(home, env, port) as af:
        yield af


def scheduled_job_ids(airflow: Airflow) -> list[str] | None:
    """The job ids the DAG's runs returned, run after run; None while a run has not finished."""
    runs = airflow.request("GET", f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
    if any(run["state"] not in ("success", "failed") for run in runs):
        return None
    ids: list[str] = []
    for run in sorted(runs, key=lambda r: r["run_after"]):
        assert run["state"] == "success", airflow.logs()
        ids += airflow.xcom(DAG_ID, run["dag_run_id"], "publish")
    return ids


def wait_for_job(airflow: Airflow, job_id: str) -> list[str]:
    def probe() -> Any:
        ids = scheduled_job_ids(airflow)
        return ids if ids and job_id in ids else None

    return list(airflow.wait_for(f"a run of {DAG_ID} for job {job_id}", probe, timeout=240))


def test_a_job_that_succeeds_schedules_the_dag_once(airflow: Airflow, emulator: BatchEmulator) -> None:
    airflow.wait_for(f"{DAG_ID} parsed", lambda: airflow.request("GET", f"/dags/{DAG_ID}"))
    emulator.add_outcome({"attempts": [{"exit_code": 1, "reason": "bad input"}]}, name="etl-bad")
    ok = emulator.submit("etl-ok", queue="nightly")
    emulator.submit("etl-bad", queue="nightly")  # FAILED: on="success" does not fire
    emulator.submit("report", queue="nightly")  # another name
    emulator.advance(3600)  # every job runs to its end; its events go to the queue
    assert wait_for_job(airflow, ok) == [ok]

    second = emulator.submit("etl-second", queue="nightly")
    emulator.advance(3600)
    ids = wait_for_job(airflow, second)
    assert sorted(ids) == sorted([ok, second])  # each once, nothing for the failed or foreign jobs


def trigger_logs(airflow: Airflow, dag_id: str) -> str:
    """What the triggerer logged for the DAG's triggers (their own files beside the task's log)."""
    paths = (airflow.home / "logs").glob(f"dag_id={dag_id}/**/*.trigger.*")
    return "".join(path.read_text(errors="replace") for path in paths)


def test_a_deferred_sensor_is_woken_by_the_jobs_events(airflow: Airflow, emulator: BatchEmulator) -> None:
    run_id = airflow.trigger_run("e2e_events")
    airflow.wait_for("e2e_events deferred", lambda: airflow.task_state("e2e_events", run_id) == "deferred")
    # The trigger lists within one poke_interval of subscribing to the queue (its progress line names the events),
    # then every 10 minutes: once it has listed, the events of the jobs below reach it.
    airflow.wait_for("the trigger's first listing", lambda: "[events: " in trigger_logs(airflow, "e2e_events"))
    # a verdict before the scheduler has heard that the deferring try ended makes Airflow fail the task ("state
    # changed externally"), as in test_real_airflow
    airflow.wait_for("the defer exit drained", lambda: airflow.scheduler_saw_defer_exit("e2e_events", run_id))
    emulator.add_outcome({"attempts": [{"exit_code": 137}, {"exit_code": 0}]}, name="ev-retried")
    names = ("ev-a", "ev-b", "ev-retried")
    jobs = [emulator.submit(name, queue="events", retryStrategy={"attempts": 2}) for name in names]
    emulator.advance(3600)  # every job runs to its end (ev-retried killed once, back to RUNNABLE, then succeeds)
    final = airflow.wait_for(
        "e2e_events finished",
        lambda: (s := airflow.task_state("e2e_events", run_id)) in ("success", "failed", "skipped") and s,
        timeout=120,  # the safety net's next listing is 10 minutes after the first
    )
    logged = trigger_logs(airflow, "e2e_events")
    assert final == "success", airflow.logs() + logged[-6000:]
    records = airflow.xcom("e2e_events", run_id)
    assert sorted(r["job_id"] for r in records) == sorted(jobs)
    assert {r["job_name"]: len(r["attempts"]) for r in records}["ev-retried"] == 2
    # the wait's own log (the consumer's is the triggerer's): its events asked for the listing that gave the verdict
    assert re.search(
        r"3 SUCCEEDED .*\[events: \d+ for this wait of \d+ read, [1-9]\d* listing\(s\) asked for", logged
    ), logged[-6000:]
    assert "Events say" not in (airflow.home / "triggerer.log").read_text(errors="replace")
