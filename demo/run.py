"""`make demo`: the example DAGs waiting on Batch jobs in a real Airflow (`airflow dags test`), against the local
emulator running the built-in `demo` scenario (airflow_batch_jobs/testing/scenarios/demo.yaml, shipped in the
wheel). Prints progress, a summary table, and exits 0 only if every task and run ended as the scenario expects.

The DAGs run one after another: `airflow dags test` processes started together on one SQLite file race while
registering the DAG bundle (`UNIQUE constraint failed: dag_bundle.name`, a run's tasks then missing). The emulated
clock stands still until the first sensor polls, then runs at SPEED: however long Airflow takes to start, the
nightly sensor meets its jobs still arriving and defers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from dags_test import DONE  # demo/ is on sys.path: run as `python demo/run.py`

from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.testing import BatchEmulator

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".demo" / "airflow_home"
LOGS = ROOT / ".demo" / "logs"  # each `airflow dags test`'s whole output
SPEED = 6.0  # emulated seconds per wall second, from the first poll on
DAG_TIMEOUT_S = 300  # for each `airflow dags test`

# dag id -> {task id: expected final state}, in the order they run: the nightly wait first (it defers while its
# jobs arrive); the others find their jobs finished; the listing last (it lists what the others waited for).
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
# dag id -> expected state of its run: the nightly run is failed (etl-publish failed), the gate's skip is no failure
EXPECTED_RUNS = {
    "example_nightly_etl": "failed",
    "example_array_fanout": "success",
    "example_exit_code_gate": "success",
    "example_list_then_describe": "success",
}
SHOWN = (
    "BatchJobs",
    "jobs —",
    "AWS Batch job",
    "attempt",
    "Marking task",
    "state=",
    "deferr",
    "DEFERRED",
    "trigger in line",
    "Trigger",
    "Error",
    "Skipping task",
    "- etl",
    "log line(s) of",  # a failed job's last log lines (airflow_batch_jobs.log_tail), framed
    "Log lines of",
    "  │ ",
    "  └ ",
    "    => ",  # a failed job's class and what to do
    "listing(s) asked for",  # job state-change events woke the nightly wait's confirming listing
)

# fields of Airflow's log lines left out of what the demo prints (the whole lines are in .demo/logs)
NOISE = re.compile(r" (?:loc|correlation_id|hostname|ti_id|rows_affected)=\S+")


def shown(line: str) -> str:
    return re.sub(r" {2,}", " ", NOISE.sub("", line.rstrip()))[:250]


def airflow_env(endpoint_conn: str, events_queue_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW_CONN_AWS_DEFAULT=endpoint_conn,
        # the nightly wait reads the emulator's job state-change events (example_nightly_etl.py's events_queue_url)
        AIRFLOW_VAR_BATCH_EVENTS_QUEUE_URL=events_queue_url,
    )
    return env


def run_dags(dag_ids: list[str], env: dict[str, str], clock: DemoClock) -> dict[str, tuple[int, list[str]]]:
    """`airflow db migrate` and `airflow dags test` for each DAG, in one process (demo/dags_test.py): prints the
    interesting lines as they come, returns each DAG's exit code and lines (the process is killed after
    DAG_TIMEOUT_S a DAG). Starts the emulated clock once the first DAG ended, if no sensor polled."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "demo" / "dags_test.py"), *dag_ids],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    timer = threading.Timer(DAG_TIMEOUT_S * len(dag_ids), proc.kill)
    timer.start()
    results: dict[str, tuple[int, list[str]]] = {}
    pending = ["db-migrate", *dag_ids]
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith(DONE):
                _, name, code = line.split()
                results[name] = int(code), lines
                lines = []
                pending.remove(name)
                if name != "db-migrate":
                    clock.release()
                    print(f"== {name}: exit code {code} ({time.monotonic() - started:.0f} s)", flush=True)
                if pending:
                    print(f"\n== airflow dags test {pending[0]}", flush=True)
                continue
            lines.append(line)
            if pending and pending[0] != "db-migrate" and any(marker in line for marker in SHOWN):
                print(f"[{pending[0]}] {shown(line)}", flush=True)
        code = proc.wait()
    finally:
        timer.cancel()
    for name in pending:  # killed, or it crashed, before these ended
        print(f"== {name}: did not end (process exit code {code})", flush=True)
        results[name] = code or 1, lines
        lines = []
    return results


class DemoClock(threading.Thread):
    """Holds the emulator's (manual) clock until the first ListJobs call, then moves it at ``speed`` emulated
    seconds per wall second: the scenario's timeline starts when the first sensor looks, not when Airflow began
    starting up (which takes from a few to tens of seconds)."""

    def __init__(self, emulator: BatchEmulator, speed: float) -> None:
        super().__init__(name="demo-clock", daemon=True)
        self.emulator = emulator
        self.speed = speed
        self.stopped = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        """Start the clock now if no sensor has polled yet (the first DAG did not get that far)."""
        self.released.set()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            if self.emulator.calls.get("ListJobs", 0) or self.released.is_set():
                break
        started = time.monotonic()
        moved = 0.0
        while not self.stopped.wait(0.05):
            target = (time.monotonic() - started) * self.speed
            self.emulator.advance(target - moved)
            moved = target

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def final_states(env: dict[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Final task states of the latest run of each DAG, and each DAG's latest run state, read from the demo's
    metadata DB."""
    code = (
        "import json\n"
        "from airflow.utils.session import create_session\n"
        "from airflow.models import DagRun, TaskInstance\n"
        "with create_session() as s:\n"
        "    tasks, runs = {}, {}\n"
        "    for ti in s.query(TaskInstance).order_by(TaskInstance.start_date):\n"
        "        tasks.setdefault(ti.dag_id, {})[ti.task_id] = str(ti.state)\n"
        "    for run in s.query(DagRun).order_by(DagRun.id):\n"
        "        runs[run.dag_id] = str(run.state)\n"
        "print(json.dumps([tasks, runs]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    tasks, runs = json.loads(result.stdout.strip().splitlines()[-1])
    return tasks, runs


def summary_table(emulator: BatchEmulator) -> str:
    """The scenario's jobs as the service reports them (ListJobs, DescribeJobs), with the array's failed children."""
    client = emulator.client()
    everything = [{"name": "AFTER_CREATED_AT", "values": ["0"]}]  # a filter lists every status
    pages = client.get_paginator("list_jobs").paginate(jobQueue="nightly", filters=everything)
    ids = [summary["jobId"] for page in pages for summary in page["jobSummaryList"]]
    jobs = [JobView(raw) for raw in client.describe_jobs(jobs=ids)["jobs"]]
    rows = [("job", "status", "attempts", "exit codes")]
    for job in sorted(jobs, key=lambda j: (j.raw.get("createdAt", 0), j.job_name)):
        rows.append((job.job_name, job.status, str(len(job.attempts)), _exit_codes(job)))
        if "size" in (job.raw.get("arrayProperties") or {}):  # an array parent
            pages = client.get_paginator("list_jobs").paginate(arrayJobId=job.job_id, jobStatus="FAILED")
            failed = [s["jobId"] for page in pages for s in page["jobSummaryList"]]
            for child in sorted((JobView(raw) for raw in client.describe_jobs(jobs=failed)["jobs"]) if failed else [],
                                key=lambda c: c.raw["arrayProperties"]["index"]):  # fmt: skip
                label = f"{job.job_name}[{child.raw['arrayProperties']['index']}]"
                rows.append((label, child.status, str(len(child.attempts)), _exit_codes(child)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _exit_codes(job: JobView) -> str:
    return ", ".join(str(a.exit_code) for a in job.attempts) or "-"


def main() -> int:
    started = time.monotonic()
    for folder in (HOME, LOGS):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    with BatchEmulator(scenario="demo", events=True) as emulator:
        print(f"AWS Batch emulator on {emulator.endpoint_url}, Airflow home {HOME}", flush=True)
        print(f"Job state-change events to the SQS queue {emulator.events_queue_url}", flush=True)
        env = airflow_env(emulator.airflow_connection(), emulator.events_queue_url)
        clock = DemoClock(emulator, SPEED)
        clock.start()
        print(f"Emulated clock: still until the first sensor polls, then x{SPEED:g} speed", flush=True)
        try:
            results = run_dags(list(EXPECTED), env, clock)
        finally:
            clock.stop()
        logs = {name: lines for name, (_, lines) in results.items()}
        for name, lines in logs.items():
            (LOGS / f"{name}.log").write_text("".join(lines))
        tasks, runs = final_states(env)
        print("\nJobs in the emulator:\n" + summary_table(emulator))
    ok = True
    print("\nTasks and runs (expected -> actual):")
    for dag_id, expected_tasks in EXPECTED.items():
        checks = [(f"{dag_id}.{task_id}", expected, tasks.get(dag_id, {}).get(task_id, "missing"))
                  for task_id, expected in expected_tasks.items()]  # fmt: skip
        checks.append((f"{dag_id} (run)", EXPECTED_RUNS[dag_id], runs.get(dag_id, "missing")))
        for label, expected, actual in checks:
            mark = "ok " if actual == expected else "BAD"
            ok &= actual == expected
            print(f"  {mark} {label}: {expected} -> {actual}")
    deferred = any("Pausing task as DEFERRED" in line for line in logs.get("example_nightly_etl", []))
    print(f"  {'ok ' if deferred else 'BAD'} example_nightly_etl.wait_for_nightly_etl deferred while its jobs ran")
    ok &= deferred
    nightly = "".join(logs.get("example_nightly_etl", []))
    read = [int(n) for n in re.findall(r"\[events: (\d+) for this wait of", nightly)]
    # the wait's progress line counts the listings its events asked for (the consumer's task logs nothing of it)
    woken = any(int(n) > 0 for n in re.findall(r"read, (\d+) listing\(s\) asked for", nightly))
    label = "example_nightly_etl.wait_for_nightly_etl read its jobs' state-change events and was woken by them"
    print(f"  {'ok ' if read and max(read) > 0 and woken else 'BAD'} {label} ({max(read, default=0)} events)")
    ok &= bool(read) and max(read) > 0 and woken
    explained = "1 application" in nightly and "  │ botocore.exceptions.ClientError" in nightly
    label = "example_nightly_etl.wait_for_nightly_etl showed etl-publish's log lines and its failure class"
    print(f"  {'ok ' if explained else 'BAD'} {label}")
    ok &= explained
    print(f"\nDemo {'behaved as the scenario expects' if ok else 'did NOT behave as expected'} "
          f"in {time.monotonic() - started:.0f} s.")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted; emulator stopped")
        raise SystemExit(130) from None
