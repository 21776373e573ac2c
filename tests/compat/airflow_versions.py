"""What the tests need to know of the Airflow version they run on."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.compat import AIRFLOW_2_TRIGGER_TIMEOUT

if TYPE_CHECKING:
    from pathlib import Path


def timed_out_trigger() -> tuple[str, dict[str, Any]]:
    """``(next_method, next_kwargs)`` with which this Airflow resumes a task whose deferral timed out."""
    try:
        from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
    except ImportError:  # Airflow 2.11: what its scheduler sets (airflow/jobs/scheduler_job_runner.py)
        return "__fail__", {"error": AIRFLOW_2_TRIGGER_TIMEOUT}
    return TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}


def dag_bag(folder: Path) -> Any:
    """The DAGs of ``folder`` as this Airflow's DAG processor parses them, without Airflow's own examples."""
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow >= 3.1
    except ImportError:
        from airflow.models.dagbag import DagBag
    no_examples = {"include_examples": False} if "include_examples" in inspect.signature(DagBag).parameters else {}
    return DagBag(dag_folder=str(folder), **no_examples)
