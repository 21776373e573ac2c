"""Every row of the fault matrix (``make faults``) ends in the right verdict, nothing missed, nothing counted twice,
and decides within one poll interval of the last job finishing (plus the time the faults cost)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .matrix import POKE_INTERVAL, rows

if TYPE_CHECKING:
    from collections.abc import Callable

    from .matrix import Outcome

ROWS = dict(rows())


@pytest.mark.parametrize("fault", list(ROWS))
def test_fault_row_gives_the_right_verdict(fault: str) -> None:
    run: Callable[[], Outcome] = ROWS[fault]
    out = run()
    assert out.verdict == "failure", out.message
    assert out.failed_names == [out.failing]
    assert len(out.ids) == len(set(out.ids)) == out.expected_jobs  # nothing missed, nothing counted twice
    assert out.failing in out.message and "exit code 1" in out.message
    interval = 120 if "latency" in fault else POKE_INTERVAL
    # within an interval of the last job; the trigger's backoff after failed polls (up to 3 in a row here) may add
    slack = 8 * 1.2 * interval if "deferrable" in fault else 30
    assert out.verdict_at_s - out.last_job_done_at_s <= interval + slack
