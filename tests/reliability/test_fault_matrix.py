"""Every row of the fault matrix (``make faults``) ends in the right verdict, nothing missed, nothing counted twice,
and decides within two poll intervals of the last job finishing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .matrix import MAX_INTERVALS_LATE, rows

if TYPE_CHECKING:
    from collections.abc import Callable

    from .matrix import Outcome

ROWS = dict(rows())
pytestmark = pytest.mark.slow  # one whole wait per row, faults and botocore retries included: minutes in all


@pytest.mark.parametrize("fault", list(ROWS))
def test_fault_row_gives_the_right_verdict(fault: str) -> None:
    run: Callable[[], Outcome] = ROWS[fault]
    out = run()
    assert out.verdict == "failure", out.message
    assert out.failed_names == [out.failing]
    assert len(out.ids) == len(set(out.ids)) == out.expected_jobs  # nothing missed, nothing counted twice
    assert out.failing in out.message and "exit code 1" in out.message
    # timely: a failed poll costs no more than the poll it replaces (no stretched interval)
    assert 0 <= out.intervals_late <= MAX_INTERVALS_LATE, f"{out.intervals_late:.2f} intervals late"
