"""A local AWS Batch for tests and demos: ``with BatchEmulator() as emu: ...`` (needs the ``testing`` extra).

The names are imported on first use (a module ``__getattr__``): the ``pytest11`` plugin is registered by every
install of the provider and imports this package, which must therefore not need the extra's werkzeug or PyYAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_batch_jobs.testing.behaviours import Behaviours
    from airflow_batch_jobs.testing.emulator import BatchEmulator
    from airflow_batch_jobs.testing.outcomes import AttemptScript, JobScript

__all__ = ["AttemptScript", "BatchEmulator", "Behaviours", "JobScript"]

_HOMES = {
    "AttemptScript": "airflow_batch_jobs.testing.outcomes",
    "BatchEmulator": "airflow_batch_jobs.testing.emulator",
    "Behaviours": "airflow_batch_jobs.testing.behaviours",
    "JobScript": "airflow_batch_jobs.testing.outcomes",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
