"""An array job fan-out: wait on its children, tolerate a few failed ones, and report the rest.

Shows: ``include_array_children`` (the children are judged, not the parent), ``max_failed_jobs`` as a tolerance
for a big array, ``match="latest"`` (tonight's array, not yesterday's), and a ``@task`` reading the records.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG, task  # airflow.sdk on Airflow 3, also found on 2.11

from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

with DAG(
    dag_id="example_array_fanout",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["example", "aws-batch"],
) as dag:
    children = BatchJobsSensor(
        task_id="wait_for_children",
        job_queue="nightly",
        job_name="fanout",
        match="latest",
        include_array_children=True,
        max_failed_jobs=3,
        poke_interval=5,
        timeout=600,
        mode="reschedule",
    )

    @task
    def report(records: list[dict]) -> dict[str, int]:
        """Count children by status and print the failed ones with their exit codes."""
        failed = [r for r in records if r["status"] == "FAILED"]
        for record in failed:
            print(f"child {record['job_id']} failed with exit code {record['final_exit_code']}")
        return {"children": len(records), "failed": len(failed)}

    report(children.output)
