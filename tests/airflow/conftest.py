from __future__ import annotations

from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator


@pytest.fixture
def context() -> dict[str, Any]:
    """A minimal task context: XCom pushes land in ``context['ti'].pushed``."""
    ti = mock.MagicMock()
    ti.pushed = {}
    ti.xcom_push.side_effect = lambda key, value: ti.pushed.__setitem__(key, value)
    return {"ti": ti}


@pytest.fixture
def emu(batch_emulator: BatchEmulator, batch_aws_conn: str) -> BatchEmulator:
    """The emulator with ``aws_default`` pointing at it."""
    return batch_emulator


def poke_until_done(sensor: Any, context: dict[str, Any], emu: BatchEmulator, step: float = 5, limit: int = 200) -> Any:
    """Poke, advancing the emulated clock between pokes, until the sensor decides. Returns (result, pokes)."""
    for pokes in range(1, limit + 1):
        result = sensor.poke(context)
        if result:
            return result, pokes
        emu.advance(step)
    raise AssertionError("the sensor never decided")
