"""Run a DAG each time an ETL job of the nightly queue succeeds on AWS Batch, from its job state-change event.

Shows: an ``Asset`` watched by ``BatchJobsEventTrigger`` (an ``AssetWatcher``, Airflow >= 3.0) and a DAG scheduled on
it. Each job that succeeds is one asset event whose ``extra["payload"]`` names the job (id, name, status, exit code,
times). Jobs finishing close together can be consumed by one DAG run: the task reads every event of its run.

The events come from an SQS queue that an EventBridge rule fills (see the README, "DAGs scheduled on Batch job
completion"). They are at least once: after a triggerer restart the same job can schedule the DAG twice, so the work
done per job should be idempotent (here: keyed by the job id).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Asset, AssetWatcher, task  # Airflow >= 3.0: Airflow 2 has no AssetWatcher

from airflow_batch_jobs.triggers.job_events import BatchJobsEventTrigger

# A fixed value (an environment variable, not a Variable read at parse time): the trigger is identified by its
# arguments, and one that changes from parse to parse is replaced each time.
EVENTS_QUEUE_URL = os.environ.get(
    "BATCH_EVENTS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/batch-job-events"
)

etl_job_succeeded = Asset(
    "aws_batch_nightly_etl_succeeded",
    watchers=[
        AssetWatcher(
            name="nightly_etl_succeeded",
            trigger=BatchJobsEventTrigger(
                job_queue="nightly",
                job_name="etl-*",
                on="success",  # "any_end": failed jobs too (the payload's status says which)
                events_queue_url=EVENTS_QUEUE_URL,
            ),
        )
    ],
)

with DAG(
    dag_id="example_asset_on_job_completion",
    schedule=[etl_job_succeeded],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["example", "aws-batch"],
) as dag:

    @task
    def publish(*, triggering_asset_events: object = None) -> list[str]:
        """One line per job that succeeded; returns their ids (each job's work keyed by its id: at least once)."""
        events = triggering_asset_events[etl_job_succeeded]  # type: ignore[index]
        jobs = [event.extra["payload"] for event in events]
        for job in jobs:
            print(f"{job['job_name']} ({job['job_id']}) {job['status']} with exit code {job['exit_code']}")
        return [job["job_id"] for job in jobs]

    publish()
