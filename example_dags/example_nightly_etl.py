"""Wait for tonight's ETL jobs by name prefix (deferrable), then describe the ones that failed.

Shows: a name-prefix filter with a created-at window taken from the run itself (``dag_run.run_after``, set for
every run, also one triggered from the CLI or UI where there is no logical date); the deferrable sensor; a
downstream task that runs even when the wait failed and describes the failed jobs from the sensor's XCom.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_batch_jobs.operators.batch_jobs import BatchDescribeJobsOperator
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

with DAG(
    dag_id="example_nightly_etl",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["example", "aws-batch"],
) as dag:
    wait = BatchJobsSensor(
        task_id="wait_for_nightly_etl",
        job_queue="nightly",
        job_name="etl-*",
        created_after="{{ dag_run.run_after - macros.timedelta(hours=12) }}",
        min_jobs=3,
        fail_fast=False,
        deferrable=True,
        poke_interval=5,
        timeout=600,
    )

    @task(trigger_rule="all_done")
    def failed_job_ids(records: list[dict] | None) -> list[str]:
        """The failed jobs among the sensor's records (pushed on success and on failure)."""
        return [r["job_id"] for r in records or [] if r["status"] == "FAILED"]

    describe_failed = BatchDescribeJobsOperator(
        task_id="describe_failed", job_ids=failed_job_ids(wait.output), trigger_rule="all_done"
    )
