"""A local AWS Batch for tests and demos: ``with BatchEmulator() as emu: ...`` (needs the ``testing`` extra), and
``run_deferred(sensor, emu)``, which runs a deferrable task to its end on the emulator's clock.

The names are imported on first use (a module ``__getattr__``): the ``pytest11`` plugin is registered by every
install of the provider and imports this package, which must therefore not need the extra's werkzeug or PyYAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_batch_jobs.testing.behaviours import Behaviours
    from airflow_batch_jobs.testing.deferral import run_deferred
    from airflow_batch_jobs.testing.emulator import BatchEmulator
    from airflow_batch_jobs.testing.outcomes import AttemptScript, JobScript

__all__ = ["AttemptScript", "BatchEmulator", "Behaviours", "JobScript", "run_deferred"]

_HOMES = {
    "AttemptScript": "airflow_batch_jobs.testing.outcomes",
    "BatchEmulator": "airflow_batch_jobs.testing.emulator",
    "Behaviours": "airflow_batch_jobs.testing.behaviours",
    "JobScript": "airflow_batch_jobs.testing.outcomes",
    "run_deferred": "airflow_batch_jobs.testing.deferral",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
