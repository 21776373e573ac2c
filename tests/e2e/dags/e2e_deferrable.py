"""Two deferrable waits for the real-Airflow end-to-end test: one whose jobs succeed, one whose jobs fail."""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG  # airflow.sdk on Airflow 3, also found on 2.11

from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

for dag_id, prefix in (("e2e_deferrable_ok", "ok-"), ("e2e_deferrable_bad", "bad-")):
    with DAG(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), catchup=False):
        BatchJobsSensor(
            task_id="wait",
            job_queue="queue",
            job_name=f"{prefix}*",
            min_jobs=2,
            fail_fast=False,
            deferrable=True,
            poke_interval=1,
            timeout=600,
        )
