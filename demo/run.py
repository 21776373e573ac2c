"""`make demo`: the example DAGs waiting on Batch jobs in a real Airflow (`airflow dags test`), against the local
emulator running demo/scenario.yaml. Prints progress, a summary table, and exits 0 only if every task ended as the
scenario expects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.testing import BatchEmulator

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".demo" / "airflow_home"
SPEED = 4.0  # emulated seconds per wall second

# dag id -> {task id: expected final state}
EXPECTED = {
    "example_nightly_etl": {
        "wait_for_nightly_etl": "failed",  # etl-publish fails: the message names it, its exit code and reason
        "failed_job_ids": "success",
        "describe_failed": "success",
        "etl_succeeded": "upstream_failed",  # the default trigger rule: the failed wait leaves the run failed
    },
    "example_array_fanout": {"wait_for_children": "success", "report": "success"},  # 2 of 12 failed, 3 tolerated
    "example_exit_code_gate": {"wait_for_ingest": "skipped", "check_ingest": "skipped", "publish": "skipped"},
    "example_list_then_describe": {"list_finished": "success", "describe": "success", "summarize": "success"},
}
SHOWN = (
    "BatchJobs",
    "jobs —",
    "AWS Batch job",
    "attempt",
    "Marking task",
    "state=",
    "deferr",
    "Trigger",
    "Error",
    "- etl",
)


def airflow_env(endpoint_conn: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW_CONN_AWS_DEFAULT=endpoint_conn,
    )
    return env


def run_dag(dag_id: str, env: dict[str, str], results: dict[str, int]) -> None:
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = subprocess.Popen(
        [airflow, "dags", "test", dag_id], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if any(marker in line for marker in SHOWN):
            print(f"[{dag_id}] {line.rstrip()[:220]}", flush=True)
    results[dag_id] = proc.wait()


def task_states(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Final task states of the latest run of each DAG, read from the demo's metadata DB."""
    code = (
        "import json\n"
        "from airflow.utils.session import create_session\n"
        "from airflow.models import TaskInstance\n"
        "with create_session() as s:\n"
        "    out = {}\n"
        "    for ti in s.query(TaskInstance).order_by(TaskInstance.start_date):\n"
        "        out.setdefault(ti.dag_id, {})[ti.task_id] = str(ti.state)\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])


def summary_table(emulator: BatchEmulator) -> str:
    model = emulator.model
    now = emulator.now_ms()
    rows = [("job", "status", "attempts", "exit codes")]
    for job in sorted(model.jobs.values(), key=lambda j: (j.created_at, j.job_id)):
        if job.parent is not None and job.array_index not in (4, 9):
            continue  # show the failed children only
        detail = JobView(model._detail(job, now))
        label = job.name if job.parent is None else f"{job.name}[{job.array_index}]"
        codes = ", ".join(str(a.exit_code) for a in detail.attempts) or "-"
        rows.append((label, detail.status, str(len(detail.attempts)), codes))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    with BatchEmulator(speed=SPEED, scenario=ROOT / "demo" / "scenario.yaml") as emulator:
        print(f"AWS Batch emulator on {emulator.endpoint_url} (x{SPEED:g} speed), Airflow home {HOME}", flush=True)
        env = airflow_env(emulator.airflow_connection())
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        results: dict[str, int] = {}
        waiting = [d for d in EXPECTED if d != "example_list_then_describe"]
        threads = [threading.Thread(target=run_dag, args=(d, env, results)) for d in waiting]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        run_dag("example_list_then_describe", env, results)  # lists what the others waited for
        states = task_states(env)
        print("\nJobs in the emulator:\n" + summary_table(emulator))
    ok = True
    print("\nTasks (expected -> actual):")
    for dag_id, tasks in EXPECTED.items():
        for task_id, expected in tasks.items():
            actual = states.get(dag_id, {}).get(task_id, "missing")
            mark = "ok " if actual == expected else "BAD"
            ok &= actual == expected
            print(f"  {mark} {dag_id}.{task_id}: {expected} -> {actual}")
    print(f"\nDemo {'behaved as the scenario expects' if ok else 'did NOT behave as expected'} "
          f"in {time.monotonic() - started:.0f} s.")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted; emulator stopped")
        raise SystemExit(130) from None
