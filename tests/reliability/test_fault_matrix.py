"""Every row of the fault matrix (``make faults``, on the emulator's realistic profile) ends in the right verdict,
nothing missed, nothing counted twice, and decides within two poll intervals of the last job finishing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .matrix import ARRAY_SIZE, MAX_INTERVALS_LATE, rows

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
    # the realistic profile's behaviours were there to be got wrong, and were not
    # (a job that aged out of the service before it was described has a summary record: no attempts, README)
    failing = next(r for r in out.records if r["job_name"] == out.failing)
    assert [a["exit_code"] for a in failing["attempts"]] == [1, 1]  # judged after its retry, not between attempts
    assert any(r["status"] == "SUCCEEDED" and len(r.get("attempts", ())) == 2 for r in out.records)  # failed, retried
    ecs = [r for r in out.records if r["job_definition"] and "/ecsdef:" in r["job_definition"]]
    assert ecs and {r["final_exit_code"] for r in ecs} == {0}  # the essential container's, never the sidecar's
    assert {a["container"] for r in ecs for a in r.get("attempts", ())} == {"main"}
    children = [r for r in out.records if (r["array_properties"] or {}).get("index") is not None]
    assert len(children) == ARRAY_SIZE
    # timely: a failed poll costs no more than the poll it replaces (no stretched interval)
    assert 0 <= out.intervals_late <= MAX_INTERVALS_LATE, f"{out.intervals_late:.2f} intervals late"
