"""A shorter soak in the suite (the full one, 5,000 jobs, runs in ``make faults``): six emulated hours with faults on,
no verdict before the last job finished, no flap after, and memory flat once every job is described."""

from __future__ import annotations

import pytest

from .soak import run

pytestmark = pytest.mark.slow  # 300 jobs over six emulated hours: minutes of wall time


def test_six_emulated_hours_no_flap_flat_memory() -> None:
    soak = run(jobs=300, hours=6)
    assert soak.verdicts.count("waiting") >= soak.last_done_poll > 10  # it really waited for the jobs
    assert not soak.early and soak.flaps == 0
    assert soak.verdicts[-1] == "failure"
    assert soak.steady_growth_mib() < 5  # MiB over 36 polls after every job finished
