"""What the tests need to know of the Airflow version they run on."""

from __future__ import annotations

from typing import Any

from airflow_batch_jobs.compat import AIRFLOW_2_TRIGGER_TIMEOUT


def timed_out_trigger() -> tuple[str, dict[str, Any]]:
    """``(next_method, next_kwargs)`` with which this Airflow resumes a task whose deferral timed out."""
    try:
        from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
    except ImportError:  # Airflow 2.11: what its scheduler sets (airflow/jobs/scheduler_job_runner.py)
        return "__fail__", {"error": AIRFLOW_2_TRIGGER_TIMEOUT}
    return TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
