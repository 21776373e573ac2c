"""Deferrable sensors for the end-to-end test on PostgreSQL with two triggerers (tests/e2e/test_postgres_triggerers.py).

Two DAGs of 16 sensors, one per triggerer at first. Each DAG waits on two queries (``<query>-*`` on ``queue``, two
jobs each), eight sensors per query: the eight ask the same question, so a triggerer holding them polls it once per
interval, and judge the answer under eight different rules, so their verdicts differ.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.common.compat.sdk import DAG  # airflow.sdk on Airflow 3, also found on 2.11

from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

POLL_INTERVAL_S = 2
WAVES = {"e2e_pg_wave_1": ("alpha", "beta"), "e2e_pg_wave_2": ("gamma", "delta")}
RULES: dict[str, dict[str, Any]] = {
    "strict": {},
    "wait_all": {"fail_fast": False},
    "exit4_ok": {"success_exit_codes": [4]},
    "tolerant": {"max_failed_jobs": 1},
    "tolerant_wait_all": {"max_failed_jobs": 1, "fail_fast": False},
    "exit3_ok": {"success_exit_codes": [3]},
    "exit3_skips": {"skip_exit_codes": [3]},
    "soft_fail": {"soft_fail": True},
}

for dag_id, queries in WAVES.items():
    with DAG(dag_id=dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), catchup=False):
        for query in queries:
            for rule, kwargs in RULES.items():
                BatchJobsSensor(
                    task_id=f"{query}_{rule}",
                    job_queue="queue",
                    job_name=f"{query}-*",
                    min_jobs=2,
                    deferrable=True,
                    poke_interval=POLL_INTERVAL_S,
                    timeout=900,
                    **kwargs,
                )
