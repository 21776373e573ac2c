from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_batch_jobs.testing import BatchEmulator


@pytest.fixture
def context() -> dict[str, Any]:
    """A minimal task context: XCom pushes land in ``context['ti'].pushed``."""
    ti = mock.MagicMock()
    ti.pushed = {}
    ti.xcom_push.side_effect = lambda key, value: ti.pushed.__setitem__(key, value)
    return {"ti": ti}


def emulator_profile(request: pytest.FixtureRequest) -> str:
    """The emulator profile a test module asks for with a module-level ``EMULATOR_PROFILE`` ("simple" when it does
    not): the sensor and trigger tests run against the service's awkward behaviours (``realistic``: retries back to
    RUNNABLE, visibility lag, lagging array summaries, ECS sidecars, EKS init containers, grouped listings)."""
    return str(getattr(request.module, "EMULATOR_PROFILE", "simple"))


@pytest.fixture
def batch_emulator(request: pytest.FixtureRequest) -> Iterator[BatchEmulator]:
    """The plugin's ``batch_emulator`` (a started emulator with ``queue`` and ``jobdef``), in the module's profile;
    a test parametrizes it indirectly with behaviour switches to set single ones (``{"summary_lag_seconds": 0}``)."""
    from airflow_batch_jobs.testing import BatchEmulator

    behaviours = getattr(request, "param", None)
    with BatchEmulator(profile=emulator_profile(request), behaviours=behaviours) as emulator:
        emulator.setup()
        yield emulator


@pytest.fixture
def emu(batch_emulator: BatchEmulator, batch_aws_conn: str) -> BatchEmulator:
    """The emulator with ``aws_default`` pointing at it."""
    return batch_emulator


def past_visibility_lag(emu: BatchEmulator) -> None:
    """Move past the service's visibility lag: a just-submitted job is missing from ListJobs and DescribeJobs for a
    moment (eventual consistency; the realistic profile's ``visibility_lag_seconds``). For tests about jobs the
    service already shows, not about the lag."""
    emu.advance(emu.behaviours.visibility_lag_seconds)


def poke_until_done(sensor: Any, context: dict[str, Any], emu: BatchEmulator, step: float = 5, limit: int = 200) -> Any:
    """Poke, advancing the emulated clock between pokes, until the sensor decides. Returns (result, pokes)."""
    for pokes in range(1, limit + 1):
        result = sensor.poke(context)
        if result:
            return result, pokes
        emu.advance(step)
    raise AssertionError("the sensor never decided")


def eventbridge_body(detail: dict[str, Any], *, account: str, region: str, event_id: str | None = None) -> str:
    """An SQS message body as an EventBridge rule delivers a Batch job state change (the envelope around
    ``detail``, the DescribeJobs detail of the job at that moment)."""
    return json.dumps(
        {
            "version": "0",
            "id": event_id or str(uuid.uuid4()),
            "detail-type": "Batch Job State Change",
            "source": "aws.batch",
            "account": account,
            "time": "2026-11-22T07:00:00Z",
            "region": region,
            "resources": [detail["jobArn"]],
            "detail": detail,
        }
    )
