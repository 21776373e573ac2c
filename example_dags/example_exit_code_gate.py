"""Gate downstream work on exit codes: the ingest job exits 3 when there is no new data, which skips the rest.

Shows: ``BatchCheckJobsOperator`` judging jobs once, now (no waiting), with ``skip_exit_codes``; a skip
propagates to the downstream task instead of failing the run.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG, task  # airflow.sdk on Airflow 3, also found on 2.11

from airflow_batch_jobs.operators.batch_jobs import BatchCheckJobsOperator
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

with DAG(
    dag_id="example_exit_code_gate",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["example", "aws-batch"],
) as dag:
    ingest_done = BatchJobsSensor(
        task_id="wait_for_ingest",
        job_queue="nightly",
        job_name="ingest",
        match="latest",
        skip_exit_codes=[3],
        poke_interval=5,
        timeout=600,
    )
    gate = BatchCheckJobsOperator(
        task_id="check_ingest",
        job_queue="nightly",
        job_name="ingest",
        match="latest",
        skip_exit_codes=[3],
        trigger_rule="all_done",
    )

    @task
    def publish() -> str:
        """Runs only when the ingest job brought new data."""
        return "published"

    ingest_done >> gate >> publish()
