"""What the benchmarks share: the progressive-finish scenario on an in-process emulator with a manual clock."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import TYPE_CHECKING
from unittest import mock

import structlog

from airflow_batch_jobs.testing import BatchEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

INTERVAL = 30.0  # emulated seconds between polls
SPAN = 600.0  # the jobs finish progressively over this many emulated seconds


def quiet() -> None:
    """The sensors' progress lines would drown the tables."""
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def progressive(jobs: int, prefix: str = "bench") -> BatchEmulator:
    """``jobs`` jobs named ``<prefix>-NNNNN``, all succeeding, finishing evenly over ``SPAN`` emulated seconds."""
    emu = BatchEmulator().start()
    emu.setup()
    for i in range(jobs):
        duration = 30 + (SPAN - 30) * i / max(jobs - 1, 1)
        emu.script_job(emu.submit(f"{prefix}-{i:05d}"), {"attempts": [{"duration": duration}]})
    return emu


@contextmanager
def connected(emu: BatchEmulator) -> Iterator[None]:
    """``aws_default`` points at the emulator."""
    with mock.patch.dict(os.environ, {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}):
        yield
