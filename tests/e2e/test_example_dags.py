"""The example DAGs import cleanly, and run in a real Airflow (`airflow dags test`) against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_jobs.testing import BatchEmulator

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_dags"


def test_every_example_dag_imports() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {p.stem for p in EXAMPLES.glob("example_*.py")}
    for dag in bag.dags.values():
        assert dag.doc_md or (dag.fileloc and Path(dag.fileloc).read_text().startswith('"""'))


def _migrated_home(home: Path) -> dict[str, str]:
    """The environment of an Airflow whose home (SQLite metadata DB) is ``home``, migrated."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    subprocess.run([Path(sys.executable).parent / "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    return env


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _migrated_home(tmp_path_factory.mktemp("airflow_home"))


def _read_db(env: dict[str, str], model_import: str, rows: str, value: str) -> dict[str, Any]:
    """``{task_id: value}`` for the DAG run's rows, read from the metadata DB by a separate process (an outside
    reader's view, after ``airflow dags test`` has exited)."""
    code = (
        f"import json\nfrom airflow.utils.session import create_session\n{model_import}\n"
        f"with create_session() as s:\n    print(json.dumps({{r.task_id: {value} for r in {rows}}}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _states(env: dict[str, str], dag_id: str) -> dict[str, Any]:
    """Each task's state."""
    model = "from airflow.models import TaskInstance"
    return _read_db(env, model, f"s.query(TaskInstance).filter_by(dag_id={dag_id!r})", "str(r.state)")


def _xcoms(env: dict[str, str], dag_id: str) -> dict[str, Any]:
    """Each task's return value."""
    model = "from airflow.models.xcom import XComModel"
    rows = f"s.query(XComModel).filter_by(dag_id={dag_id!r}, key='return_value')"
    return _read_db(env, model, rows, "XComModel.deserialize_value(r)")


def _run_state(env: dict[str, str], dag_id: str) -> str:
    """The state of the DAG's only run in this metadata DB."""
    code = (
        "import json\nfrom airflow.utils.session import create_session\nfrom airflow.models import DagRun\n"
        "with create_session() as s:\n"
        f"    print(json.dumps([str(r.state) for r in s.query(DagRun).filter_by(dag_id={dag_id!r})]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    (state,) = json.loads(out.stdout.strip().splitlines()[-1])
    return str(state)


def _dags_test(env: dict[str, str], dag_id: str) -> str:
    run = subprocess.run(
        [Path(sys.executable).parent / "airflow", "dags", "test", dag_id], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    return run.stdout + run.stderr


@pytest.mark.e2e
def test_array_fanout_dag_runs_against_the_emulator(airflow_home: dict[str, str]) -> None:
    with BatchEmulator(speed=20) as emu:
        emu.setup(queue="nightly")
        emu.add_outcome({"attempts": [{"exit_code": 1, "reason": "bad partition"}]}, name="fanout", indices=[2])
        emu.submit("fanout", queue="nightly", arrayProperties={"size": 5})
        env = {**airflow_home, "AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}
        run = subprocess.run(
            [Path(sys.executable).parent / "airflow", "dags", "test", "example_array_fanout"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert "child" in run.stdout + run.stderr and "failed with exit code 1" in run.stdout + run.stderr
        assert _states(env, "example_array_fanout") == {"wait_for_children": "success", "report": "success"}
        # a queue page, then the children in the statuses their parent's summary shows (not all 7 statuses a poll)
        assert emu.calls.get("ListJobs", 0) >= 2


@pytest.mark.e2e
def test_nightly_dag_fails_with_a_readable_message(airflow_home: dict[str, str]) -> None:
    with BatchEmulator(speed=20) as emu:
        emu.setup(queue="nightly")
        emu.add_outcome({"attempts": [{"exit_code": 2, "reason": "AccessDenied on s3://x"}]}, name="etl-b")
        for name in ("etl-a", "etl-b", "etl-c", "etl-d"):  # the example waits for min_jobs=4
            emu.submit(name, queue="nightly")
        env = {**airflow_home, "AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}
        run = subprocess.run(
            [Path(sys.executable).parent / "airflow", "dags", "test", "example_nightly_etl"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        output = run.stdout + run.stderr
        assert "1 of 4 AWS Batch job(s) failed" in output and "AccessDenied on s3://x" in output
        assert _states(env, "example_nightly_etl") == {
            "wait_for_nightly_etl": "failed",
            "failed_job_ids": "success",  # all_done: the failed jobs are still described
            "describe_failed": "success",
            "etl_succeeded": "upstream_failed",
        }
        # the run is failed, not green: users copy this example
        assert _run_state(env, "example_nightly_etl") == "failed"
        assert run.returncode != 0 and "DagRun failed" in output


@pytest.mark.e2e
def test_nightly_dag_succeeds_when_every_job_does(tmp_path: Path) -> None:
    home = _migrated_home(tmp_path)  # its own metadata DB: one run of the DAG to read back
    with BatchEmulator(speed=20) as emu:
        emu.setup(queue="nightly")
        for name in ("etl-a", "etl-b", "etl-c", "etl-d"):
            emu.submit(name, queue="nightly")
        env = {**home, "AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}
        output = _dags_test(env, "example_nightly_etl")
        assert _states(env, "example_nightly_etl") == {
            "wait_for_nightly_etl": "success",
            "failed_job_ids": "success",
            "describe_failed": "success",
            "etl_succeeded": "success",
        }, output
        assert _run_state(env, "example_nightly_etl") == "success"


@pytest.mark.e2e
def test_exit_code_gate_skips_downstream_on_no_new_data(airflow_home: dict[str, str]) -> None:
    with BatchEmulator(speed=20) as emu:
        emu.setup(queue="nightly")
        emu.add_outcome({"attempts": [{"exit_code": 3, "reason": "no new data"}]}, name="ingest")
        emu.submit("ingest", queue="nightly")
        env = {**airflow_home, "AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}
        output = _dags_test(env, "example_exit_code_gate")
        assert "exit code 3" in output
        assert _states(env, "example_exit_code_gate") == {
            "wait_for_ingest": "skipped",
            "check_ingest": "skipped",
            "publish": "skipped",
        }
        assert "publish" not in _xcoms(env, "example_exit_code_gate")


@pytest.mark.e2e
def test_list_then_describe_feeds_records_downstream(airflow_home: dict[str, str]) -> None:
    with BatchEmulator(speed=20) as emu:
        emu.setup(queue="nightly")
        emu.add_outcome({"attempts": [{"exit_code": 137, "reason": "OOM"}, {"exit_code": 0}]}, name="retried")
        emu.submit("retried", queue="nightly", retryStrategy={"attempts": 2},
                   containerOverrides={"environment": [{"name": "DB_PASSWORD", "value": "hunter2-e2e"}]})  # fmt: skip
        emu.submit("plain", queue="nightly")
        emu.script_job(emu.submit("long", queue="nightly"), {"attempts": [{"exit_code": 0, "duration": 7200}]})
        emu.advance(600)
        env = {**airflow_home, "AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}
        output = _dags_test(env, "example_list_then_describe")
        assert "hunter2-e2e" not in output  # the run's whole log, task logs included
        assert _states(env, "example_list_then_describe") == {
            "list_finished": "success",
            "describe": "success",
            "summarize": "success",
        }
        xcoms = _xcoms(env, "example_list_then_describe")
        assert "long" not in {r["job_name"] for r in xcoms["list_finished"]}  # still running: not listed
        described = {r["job_name"]: r for r in xcoms["describe"]}
        assert set(described) >= {"retried", "plain"} and "long" not in described
        assert [a["exit_code"] for a in described["retried"]["attempts"]] == [137, 0]
        assert described["retried"]["detail"]["jobName"] == "retried"  # xcom_detail="full"
        assert "hunter2-e2e" not in json.dumps(xcoms)
        assert "retried: SUCCEEDED after 2 attempt(s), exit codes [137, 0]" in xcoms["summarize"]
