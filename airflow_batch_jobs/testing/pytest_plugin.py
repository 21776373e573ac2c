"""pytest fixtures for testing DAGs against the local AWS Batch emulator (registered through ``pytest11``).

- ``batch_emulator``: a started :class:`BatchEmulator` with a manual clock and a queue ``queue`` and job
  definition ``jobdef``; stopped after the test. ``@pytest.mark.batch_emulator(events=True, seed=7, ...)`` passes
  its keyword arguments to :class:`BatchEmulator`.
- ``batch_emulator_events``: the same emulator with job state-change events on (``events=True``): its
  ``events_queue_url`` receives them, ``sqs_client()`` reads them, ``inject_event_faults`` / ``queue_unreachable``
  disturb them. ``batch_client`` and ``batch_aws_conn`` in the same test use it (request it first, or use the
  marker); ``batch_aws_conn`` then also sends the connection's SQS calls to the events queue's endpoint.
- ``batch_client``: a boto3 Batch client for it.
- ``batch_aws_conn``: sets ``AIRFLOW_CONN_AWS_DEFAULT`` (and ``AIRFLOW_CONN_BATCH_EMULATOR``) to an ``aws``
  connection whose ``endpoint_url`` is the emulator, so hooks, sensors and operators reach it unchanged.

pytest loads this module in every environment where the provider is installed, also without the ``testing``
extra (the entry point cannot depend on an extra). So it imports nothing from the extra at module level: the
emulator is imported when a fixture is used, and a missing dependency then fails that test with the command that
installs it, instead of breaking every pytest run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_batch_jobs.testing.emulator import BatchEmulator

INSTALL_HINT = "pip install 'airflow-batch-jobs[testing]'"


def _emulator_class() -> type[BatchEmulator]:
    try:
        from airflow_batch_jobs.testing.emulator import BatchEmulator
    except ImportError as exc:
        missing = f"'{exc.name}' is not installed" if exc.name else str(exc)
    else:
        return BatchEmulator
    pytest.fail(  # outside the except block: one clear message, not a chained traceback
        f"The batch_emulator fixture needs the local AWS Batch emulator's dependencies ({missing}): {INSTALL_HINT}",
        pytrace=False,
    )


MARKER = "batch_emulator"


def pytest_configure(config: pytest.Config) -> None:
    # registered, so that --strict-markers accepts it in users' projects too
    config.addinivalue_line("markers", f"{MARKER}(**kwargs): arguments for the batch_emulator fixture's BatchEmulator")


@pytest.fixture
def batch_emulator(request: pytest.FixtureRequest) -> Iterator[BatchEmulator]:
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # the closest marker wins
        options.update(marker.kwargs)
    with _emulator_class()(**options) as emulator:
        emulator.setup()
        yield emulator


@pytest.fixture
def batch_emulator_events(request: pytest.FixtureRequest) -> BatchEmulator:
    """``batch_emulator`` with job state-change events published to an SQS queue."""
    request.applymarker(pytest.mark.batch_emulator(events=True))  # counts if batch_emulator is not made yet
    emulator: BatchEmulator = request.getfixturevalue("batch_emulator")
    if emulator.events is None:
        pytest.fail(
            "batch_emulator was made before batch_emulator_events could turn events on: request "
            "batch_emulator_events first, or mark the test @pytest.mark.batch_emulator(events=True).",
            pytrace=False,
        )
    return emulator


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
