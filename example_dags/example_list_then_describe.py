"""List jobs, describe them through an XComArg, and use the records in a downstream ``@task``.

Shows: ``BatchListJobsOperator`` (status filter, newest N) feeding ``BatchDescribeJobsOperator`` through its
``output``; ``xcom_detail="full"`` adds each job's DescribeJobs detail with secrets redacted.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG, task  # airflow.sdk on Airflow 3, also found on 2.11

from airflow_batch_jobs.operators.batch_jobs import BatchDescribeJobsOperator, BatchListJobsOperator

with DAG(
    dag_id="example_list_then_describe",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["example", "aws-batch"],
) as dag:
    listed = BatchListJobsOperator(
        task_id="list_finished", job_queue="nightly", job_status=["SUCCEEDED", "FAILED"], latest=10
    )
    described = BatchDescribeJobsOperator(task_id="describe", job_ids=listed.output, xcom_detail="full")

    @task
    def summarize(records: list[dict]) -> list[str]:
        """One line per job: name, status, attempts and their exit codes."""
        return [
            f"{r['job_name']}: {r['status']} after {len(r['attempts'])} attempt(s), "
            f"exit codes {[a['exit_code'] for a in r['attempts']]}"
            for r in records
        ]

    summarize(described.output)
