"""What differs between the Airflow versions the provider supports (2.11 to the latest 3.x) that the
``airflow.providers.common.compat`` layer does not cover.

Names that moved between versions are imported through ``airflow.providers.common.compat.sdk``, as the amazon
provider does. What is left is behaviour: how a deferred sensor ends when its trigger times out.
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowSensorTimeout, AirflowSkipException

# The error Airflow 2.11's scheduler hands a task whose deferral timed out (next_method "__fail__"); Airflow 3 raises
# TaskDeferralTimeout there instead.
AIRFLOW_2_TRIGGER_TIMEOUT = "Trigger/execution timeout"


def _airflow_exception(name: str) -> type[Exception] | None:
    """An exception class from the Task SDK (Airflow >= 3.1) or from ``airflow.exceptions`` (2.11, 3.0); None when
    this Airflow has no such class."""
    for module_name in ("airflow.sdk.exceptions", "airflow.exceptions"):
        try:
            found = getattr(importlib.import_module(module_name), name, None)
        except ImportError:
            continue
        if isinstance(found, type) and issubclass(found, Exception):
            return found
    return None


def _required(name: str) -> type[Exception]:
    found = _airflow_exception(name)
    if found is None:
        raise ImportError(f"this Airflow has no {name}: airflow-batch-jobs needs Airflow >= 2.11")
    return found


TaskDeferralError = _required("TaskDeferralError")
# Airflow >= 3.0 only; on 2.11 a timed-out deferral is a TaskDeferralError carrying AIRFLOW_2_TRIGGER_TIMEOUT
DEFERRAL_TIMEOUTS: tuple[type[Exception], ...] = tuple(
    cls for cls in (_airflow_exception("TaskDeferralTimeout"),) if cls is not None
)


class TriggerTimeoutIsSensorTimeout:
    """A deferred sensor whose trigger timed out ends as on Airflow >= 3.3, whatever the version: as a sensor timeout
    (``AirflowSensorTimeout``, which Airflow does not retry), or skipped with ``soft_fail`` / ``never_fail``.

    Airflow 3.0-3.2 fail a ``soft_fail`` sensor there instead of skipping it; 2.11 raises ``TaskDeferralError``,
    which Airflow retries like any error, so a wait past its ``timeout`` would start over.
    """

    soft_fail: bool

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        try:
            try:
                return super().resume_execution(next_method, next_kwargs, context)  # type: ignore[misc]
            except DEFERRAL_TIMEOUTS as err:
                raise AirflowSensorTimeout(*err.args) from err
            except TaskDeferralError as err:
                if (next_kwargs or {}).get("error") == AIRFLOW_2_TRIGGER_TIMEOUT:
                    raise AirflowSensorTimeout(*err.args) from err
                raise
        except AirflowSkipException:
            raise
        except (AirflowException, TaskDeferralError) as err:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from err
            if getattr(self, "never_fail", False):  # Airflow >= 3.1
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            raise
