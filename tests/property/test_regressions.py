"""Histories the property test found, kept as ordinary tests (each failed on the code before its fix)."""

from __future__ import annotations

import pytest

from .driver import play
from .histories import History, JobPlan
from .oracle import check


def test_a_job_terminated_while_waiting_for_its_retry_is_no_success() -> None:
    """Attempt 1 exited 4 (a success exit code), the job went back to RUNNABLE for its retry and was terminated
    there: it ended FAILED by the terminate, not with exit code 4. Found by make fuzz (seed 2002, history 103);
    the sensor said SUCCESS."""
    history = History(
        jobs=(
            JobPlan(
                name="etl-0",
                submit_at=0.0,
                exit_codes=(4, 0, 4),
                attempts=3,
                evaluate_on_exit=False,
                duration=12.0,
                runnable=8.0,
                stop_after=29.6,
                stop_how="terminate",
            ),
        ),
        behaviours={"visibility_lag_seconds": 10.0, "summary_lag_seconds": 20.0, "grouped_listing": False},
        retention_seconds=300.0,
        faults=(),
        mode="poke",
        interval=15.0,
        restart_after_polls=None,
        policy={
            "match": "latest",
            "min_jobs": 1,
            "success_exit_codes": [4],
            "skip_exit_codes": [],
            "max_failed_jobs": 0,
            "fail_fast": True,
            "include_array_children": False,
        },
        seed=1002,
    )
    emu, result = play(history)
    assert result.verdict == "FAILURE", result
    check(emu, history, result)


def test_a_success_that_aged_out_between_reschedule_tries_still_counts_for_min_jobs() -> None:
    """etl-3 succeeded at once and aged out (retention 120 s) before etl-0, submitted at 90 s, finished: the later
    tries listed one job of the two min_jobs asks for and waited to the timeout. Found by make fuzz (seed 1001, 1,242
    histories in); the memory in task_state_store now keeps plain successes too."""
    quick = {"exit_codes": (0,), "attempts": 1, "evaluate_on_exit": False, "duration": 1.0, "runnable": 1.0}
    history = History(
        jobs=(
            JobPlan(name="etl-0", submit_at=90.0, **{**quick, "duration": 12.0, "runnable": 25.0}),
            JobPlan(name="other-1", submit_at=0.0, **quick),
            JobPlan(name="etl-3", submit_at=0.0, **quick),
        ),
        behaviours={"visibility_lag_seconds": 0.0, "summary_lag_seconds": 0.0, "grouped_listing": False},
        retention_seconds=120.0,
        faults=(),
        mode="reschedule",
        interval=5.0,
        restart_after_polls=None,
        policy={
            "match": "all",
            "min_jobs": 2,
            "success_exit_codes": [],
            "skip_exit_codes": [],
            "max_failed_jobs": 0,
            "fail_fast": False,
            "include_array_children": False,
        },
        state_store=True,
    )
    emu, result = play(history)
    assert result.verdict == "SUCCESS", result
    assert sorted(r["job_name"] for r in result.records or []) == ["etl-0", "etl-3"]
    check(emu, history, result)


@pytest.mark.parametrize(("mode", "state_store"), [("poke", True), ("reschedule", True), ("deferrable", True)])
def test_an_array_cancelled_before_its_children_is_no_rejected_request_once_it_ages_out(
    mode: str, state_store: bool
) -> None:
    """An array job cancelled at once (no child ever ran) and waited on with include_array_children and min_jobs=2:
    each poll listed its children again, and once it aged out of ListJobs (retention 300 s) the service answered
    that listing with "Job ... does not exist", which failed the wait as "AWS Batch rejected the request". Found by
    make fuzz (seed 1001, on 5ec0fbc, within its first 4,700 histories). A finished parent whose children are all
    accounted for is final: its children are not listed again."""
    history = History(
        jobs=(
            JobPlan(
                name="etl-0",
                submit_at=0.0,
                exit_codes=(0,),
                attempts=1,
                evaluate_on_exit=False,
                duration=1.0,
                runnable=1.0,
                array_size=2,
                child_exit_codes=((0,), (0,)),
                stop_after=0.0,
                stop_how="cancel",
            ),
            JobPlan(
                name="other-1",
                submit_at=0.0,
                exit_codes=(0,),
                attempts=1,
                evaluate_on_exit=False,
                duration=1.0,
                runnable=1.0,
            ),
        ),
        behaviours={"visibility_lag_seconds": 0.0, "summary_lag_seconds": 0.0, "grouped_listing": False},
        retention_seconds=300.0,
        faults=(),
        mode=mode,
        interval=5.0,
        restart_after_polls=None,
        policy={
            "match": "all",
            "min_jobs": 2,
            "success_exit_codes": [],
            "skip_exit_codes": [],
            "max_failed_jobs": 0,
            "fail_fast": False,
            "include_array_children": True,
        },
        seed=0,
        state_store=state_store,
    )
    emu, result = play(history)
    assert "rejected" not in (result.message or ""), result
    check(emu, history, result)
