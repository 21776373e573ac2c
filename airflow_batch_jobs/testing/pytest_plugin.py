"""pytest fixtures for testing DAGs against the local AWS Batch emulator (registered through ``pytest11``).

- ``batch_emulator``: a started :class:`BatchEmulator` with a manual clock and a queue ``queue`` and job
  definition ``jobdef``; stopped after the test.
- ``batch_client``: a boto3 Batch client for it.
- ``batch_aws_conn``: sets ``AIRFLOW_CONN_AWS_DEFAULT`` (and ``AIRFLOW_CONN_BATCH_EMULATOR``) to an ``aws``
  connection whose ``endpoint_url`` is the emulator, so hooks, sensors and operators reach it unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_batch_jobs.testing.emulator import BatchEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def batch_emulator() -> Iterator[BatchEmulator]:
    with BatchEmulator() as emulator:
        emulator.setup()
        yield emulator


@pytest.fixture
def batch_client(batch_emulator: BatchEmulator) -> Any:
    return batch_emulator.client()


@pytest.fixture
def batch_aws_conn(batch_emulator: BatchEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """The connection id (``aws_default``) pointing at the emulator."""
    uri = batch_emulator.airflow_connection()
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", uri)
    monkeypatch.setenv("AIRFLOW_CONN_BATCH_EMULATOR", uri)
    return "aws_default"
