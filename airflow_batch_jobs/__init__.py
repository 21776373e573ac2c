"""Apache Airflow provider to find, wait on and judge AWS Batch jobs by queue, name, definition and time."""

from __future__ import annotations

__version__ = "0.1.0"
