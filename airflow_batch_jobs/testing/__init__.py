"""A local AWS Batch for tests and demos: ``with BatchEmulator() as emu: ...`` (needs the ``testing`` extra)."""

from __future__ import annotations

from airflow_batch_jobs.testing.emulator import BatchEmulator
from airflow_batch_jobs.testing.outcomes import AttemptScript, JobScript

__all__ = ["AttemptScript", "BatchEmulator", "JobScript"]
