"""A shorter soak in the suite (the full one, 5,000 jobs, runs in ``make faults``): six emulated hours with faults on,
on the realistic profile (retried jobs go back to RUNNABLE), no verdict before the last job finished, no flap after,
and memory flat once every job is described."""

from __future__ import annotations

import pytest

from .soak import run

pytestmark = pytest.mark.slow  # 300 jobs over six emulated hours: minutes of wall time


def test_six_emulated_hours_no_flap_flat_memory() -> None:
    soak = run(jobs=300, hours=6)
    assert soak.last_done_poll > 10  # the jobs ran over many polls (the emulator's ground truth)
    assert not soak.early and soak.flaps == 0  # no verdict before the last job finished, none changed after
    assert soak.verdicts[-1] == "failure"
    assert soak.steady_growth_mib() < 5  # MiB over 36 polls after every job finished
