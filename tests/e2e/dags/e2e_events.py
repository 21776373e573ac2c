"""A deferrable wait woken by job state-change events, for the end-to-end test in a real triggerer
(tests/e2e/test_asset_watcher.py sets ``BATCH_EVENTS_QUEUE_URL`` to the emulator's queue; without it, the wait polls).

Its trigger lists once within ``poke_interval`` of subscribing to the queue, then every 10 x ``poke_interval`` (the
safety net): once that first listing is made, a verdict within a minute of the jobs' end comes from a listing their
events asked for.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.sdk import DAG  # airflow.sdk on Airflow 3, also found on 2.11

from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

POKE_INTERVAL_S = 60  # the safety net polls every 10 minutes

with DAG(dag_id="e2e_events", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), catchup=False):
    BatchJobsSensor(
        task_id="wait",
        job_queue="events",
        job_name="ev-*",
        min_jobs=3,
        fail_fast=False,
        deferrable=True,
        poke_interval=POKE_INTERVAL_S,
        timeout=7200,
        events_queue_url=os.environ.get("BATCH_EVENTS_QUEUE_URL", ""),
    )
