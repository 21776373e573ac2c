"""Wait for tonight's ETL jobs by name prefix (deferrable), then describe the ones that failed.

Shows: a name-prefix filter with a created-at window taken from the run itself (``dag_run.run_after``, set for
every run on Airflow 3, also one triggered from the CLI or UI where there is no logical date; Airflow 2.11 has no
``run_after`` but always sets the logical date, which the template takes there); ``min_jobs`` set to the number of
jobs the night runs (the sensor sees only the jobs submitted so far); the deferrable sensor, woken by AWS Batch job
state-change events when the ``batch_events_queue_url`` Variable names their SQS queue; downstream tasks that
run even when the wait failed and describe the failed jobs from the sensor's XCom; and a last task with the default
trigger rule, so that a failed wait leaves the run failed (a run takes its state from its last tasks, and the
``all_done`` tasks succeed either way).
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG, task  # airflow.sdk on Airflow 3, also found on 2.11

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
        created_after="{{ (dag_run.run_after | default(dag_run.logical_date)) - macros.timedelta(hours=12) }}",
        min_jobs=4,  # extract, transform, load, publish: with fewer, finished early jobs could pass for the night
        fail_fast=False,
        deferrable=True,
        poke_interval=5,
        timeout=600,
        # job state-change events from the SQS queue an EventBridge rule feeds, when the Variable names one (make demo
        # sets it): each event that can end the wait wakes a listing at once; polling every 10 x 5 s is the safety net
        events_queue_url="{{ var.value.get('batch_events_queue_url', '') }}",
    )

    @task(trigger_rule="all_done")
    def failed_job_ids(records: list[dict] | None) -> list[str]:
        """The failed jobs among the sensor's records (pushed on success and on failure)."""
        return [r["job_id"] for r in records or [] if r["status"] == "FAILED"]

    describe_failed = BatchDescribeJobsOperator(
        task_id="describe_failed", job_ids=failed_job_ids(wait.output), trigger_rule="all_done"
    )

    @task
    def etl_succeeded() -> str:
        """Runs only when the wait succeeded (default trigger rule ``all_success``). When it failed, this task is
        ``upstream_failed`` and so is the run; without it the run would show success after a failed wait."""
        return "every nightly ETL job succeeded"

    [wait, describe_failed] >> etl_succeeded()
