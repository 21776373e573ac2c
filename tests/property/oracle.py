"""Ground truth from the emulator's own model, and the verdict the README's rules give on it.

Written from the README's verdict rules, not from ``airflow_batch_jobs.policy``: a test that computed the expected
verdict with the code under test would agree with its bugs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# The refusal the README names (its "What the sensors promise under faults" section).
NOT_PROVEN = "No verdict can be proven"

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator
    from airflow_batch_jobs.testing.lifecycle import Job

    from .histories import History

TERMINAL = ("SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class Truth:
    """One judged unit (a job, or an array child) as the service knows it at a moment."""

    job_id: str
    created_at: int
    status: str
    exit_code: int | None
    stopped: bool  # cancelled or terminated

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class GroundTruth:
    def __init__(self, emu: BatchEmulator, history: History) -> None:
        self.model = emu.model
        self.life = emu.model.lifecycle
        self.history = history
        self.lag_ms = emu.behaviours.visibility_lag_ms

    def _matching(self) -> list[Job]:
        return [j for j in self.model.jobs.values() if j.parent is None and j.name.lower().startswith("etl-")]

    def _truth(self, job: Job, at: int) -> Truth:
        status, _ = self.life.state_at(job, at)
        attempts = self.life.finished_attempts(job, at)
        code = attempts[-1].shape.get("container", {}).get("exitCode") if attempts and not job.is_parent else None
        return Truth(
            job.job_id, self.life.created_at(job) or 0, status, code, job.stop is not None and status == "FAILED"
        )

    def units(self, at: int, *, aged_out: bool = True) -> list[Truth]:
        """What a complete, correct listing judges at ``at``: matching jobs created and past the visibility lag
        (aged-out ones included: a wait that saw them must remember them, unless ``aged_out`` is False: a wait that
        cannot remember), children instead of array parents when the policy says so, the newest only for
        match='latest'."""
        jobs = [j for j in self._matching() if (c := self.life.created_at(j)) is not None and c + self.lag_ms <= at]
        if not aged_out:
            jobs = [j for j in jobs if self.life.visible(j, at, self.model.retention_ms)]
        if self.history.policy["match"] == "latest" and jobs:
            jobs = [max(jobs, key=lambda j: (self.life.created_at(j) or 0, j.seq))]
        out: list[Truth] = []
        for job in jobs:
            children = [c for c in job.children if (c_at := self.life.created_at(c)) is not None and c_at <= at]
            if self.history.policy["include_array_children"] and job.array_size and children:
                out.extend(self._truth(child, at) for child in children)
            else:
                out.append(self._truth(job, at))
        return out

    def all_finished_by(self) -> int | None:
        """When every matching job (and child) has ended, if they all do."""
        ends = [self.life.end_of(j) for j in self._matching()]
        return None if any(e is None for e in ends) else max((e[0] for e in ends if e), default=0)


def outcome(unit: Truth, policy: dict[str, Any]) -> str:
    """README: a skip exit code makes the task skip; a FAILED job whose final attempt exited with a success code
    counts as a success; a cancelled or terminated job is a failure (its last attempt's code is not its end)."""
    if unit.stopped:
        return "failure"
    if unit.exit_code is not None and unit.exit_code in policy["skip_exit_codes"]:
        return "skip"
    if unit.status == "SUCCEEDED" or (unit.exit_code is not None and unit.exit_code in policy["success_exit_codes"]):
        return "success"
    return "failure"


def reference_verdict(units: list[Truth], policy: dict[str, Any]) -> str:
    """The verdict the rules give once every unit has finished (WAITING while fewer than min_jobs)."""
    if len(units) < policy["min_jobs"]:
        return "WAITING"
    outcomes = [outcome(u, policy) for u in units]
    if outcomes.count("failure") > policy["max_failed_jobs"]:
        return "FAILURE"
    if "skip" in outcomes:
        return "SKIP"
    return "SUCCESS"


def check(emu: BatchEmulator, history: History, result: Any) -> None:
    """The invariants: no terminal verdict while a judged job is active (except fail_fast on failures that are
    already final); once all have finished, the verdict the rules give; every job once; records that match."""
    truth = GroundTruth(emu, history)
    policy = history.policy
    units = truth.units(result.at_ms)
    # A later reschedule try without a task_state_store (Airflow < 3.3) knows only what the service lists now: a job
    # that aged out since an earlier try is gone for it (the README says so), so it may wait on fewer jobs than there
    # were and records only those listed; its verdicts are held to every job all the same.
    forgetful = history.mode == "reschedule" and not history.state_store
    listed = truth.units(result.at_ms, aged_out=False) if forgetful else units
    if result.verdict == "FAILURE" and NOT_PROVEN in result.message:
        # The README's refusal of a success that cannot be proven: from a forgetful try, or from a trigger rebuilt
        # longer than the retention after the last listing it was handed (anything may have aged out unseen).
        blind = result.blind_ms is not None and result.blind_ms > emu.model.retention_ms
        assert forgetful or blind, f"refused though nothing can have been missed: {result.message}"
        return
    if result.verdict == "NONE":
        finished = truth.all_finished_by()
        if finished is not None:  # every job ended long before the horizon: only too few jobs may keep it waiting
            expected = reference_verdict(listed, policy)
            assert expected == "WAITING", f"no verdict by the horizon, though every job ended at {finished}: {expected}"
        return
    active = [u for u in units if not u.finished]
    failures = [u for u in units if u.finished and outcome(u, policy) == "failure"]
    if active or len(units) < policy["min_jobs"]:
        early_failure = (
            result.verdict == "FAILURE" and policy["fail_fast"] and len(failures) > policy["max_failed_jobs"]
        )
        assert early_failure, (
            f"{result.verdict} at +{(result.at_ms - 1_795_000_000_000) / 1000}s while {len(active)} of {len(units)} "
            f"judged job(s) were active ({[(u.job_id, u.status) for u in active]}), min_jobs={policy['min_jobs']}: "
            f"{result.message}"
        )
    else:
        expected = reference_verdict(units, policy)
        assert result.verdict == expected, (
            f"{result.verdict} but the rules give {expected} on {units}: {result.message}"
        )
    if result.records is not None and result.verdict != "FAILURE":
        ids = [r["job_id"] for r in result.records]
        assert len(ids) == len(set(ids)), f"a job counted twice: {ids}"
        by_id = {u.job_id: u for u in listed}
        assert set(ids) == set(by_id), f"records {sorted(ids)} are not the judged jobs {sorted(by_id)}"
        for record in result.records:
            unit = by_id[record["job_id"]]
            assert record["status"] == unit.status, (record, unit)
            assert record.get("final_exit_code") == unit.exit_code, (record, unit)
