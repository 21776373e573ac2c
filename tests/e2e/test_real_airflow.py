"""A real Airflow on loopback: api-server, scheduler, dag-processor and triggerer as separate processes (SQLite,
LocalExecutor). Runs triggered through the REST API; the deferrable sensor is seen DEFERRED while the real triggerer
polls the emulator, then SUCCESS (XCom read back over REST) or FAILED (the readable message in the task log)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_batch_jobs.testing import BatchEmulator
from tests.e2e.real_airflow import Airflow, airflow_env, free_port, running

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def emulator() -> Iterator[BatchEmulator]:
    with BatchEmulator() as emu:  # manual clock: jobs move only when the test says so
        emu.setup()
        yield emu


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, emulator: BatchEmulator) -> Iterator[Airflow]:
    home = tmp_path_factory.mktemp("real_airflow")
    port = free_port()
    env = airflow_env(home, port, emulator.airflow_connection())
    with running(home, env, port) as af:
        yield af


def test_deferrable_sensor_in_a_real_triggerer(airflow: Airflow, emulator: BatchEmulator) -> None:
    emulator.add_outcome({"attempts": [{"exit_code": 2, "reason": "disk full on /scratch"}]}, name="bad-2")
    for name in ("ok-1", "ok-2", "bad-1", "bad-2"):
        emulator.submit(name)  # the clock stands still: they stay SUBMITTED until the test moves it

    runs = {dag_id: airflow.trigger_run(dag_id) for dag_id in ("e2e_deferrable_ok", "e2e_deferrable_bad")}

    for dag_id, run_id in runs.items():
        airflow.wait_for(f"{dag_id} deferred", lambda d=dag_id, r=run_id: airflow.task_state(d, r) == "deferred")
    before = emulator.calls.get("ListJobs", 0)
    airflow.wait_for("the triggerer polling", lambda: emulator.calls.get("ListJobs", 0) >= before + 4, timeout=60)
    assert all(airflow.task_state(d, r) == "deferred" for d, r in runs.items())  # still waiting: nothing finished
    for dag_id, run_id in runs.items():
        drained = lambda d=dag_id, r=run_id: airflow.scheduler_saw_defer_exit(d, r)  # noqa: E731
        airflow.wait_for(f"the scheduler to drain {dag_id}'s defer exit", drained)

    emulator.advance(3600)  # every job runs to its end
    finals = {
        dag_id: airflow.wait_for(
            f"{dag_id} finished",
            lambda d=dag_id, r=run_id: (s := airflow.task_state(d, r)) in ("success", "failed", "skipped") and s,
        )
        for dag_id, run_id in runs.items()
    }
    task_logs = "\n".join(f"--- task log of {d}\n{airflow.task_log(d, r)[-6000:]}" for d, r in runs.items())
    assert finals == {"e2e_deferrable_ok": "success", "e2e_deferrable_bad": "failed"}, airflow.logs() + task_logs

    records = airflow.xcom("e2e_deferrable_ok", runs["e2e_deferrable_ok"])
    assert sorted(r["job_name"] for r in records) == ["ok-1", "ok-2"]
    assert all(r["status"] == "SUCCEEDED" and r["final_exit_code"] == 0 for r in records)

    text = airflow.task_log("e2e_deferrable_bad", runs["e2e_deferrable_bad"])
    assert "1 of 2 AWS Batch job(s) failed" in text
    assert "bad-2" in text and "exit code 2" in text and "disk full on /scratch" in text
