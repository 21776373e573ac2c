"""No false verdict (issue #13): every children listing is complete before a verdict, ``runnable_timeout`` measures the
current RUNNABLE period, a childless failed array parent fails at once, and aged-out children count as finished.

The Stubber tests state every call a poll makes, in order (any other call fails them); the emulator tests play the
same histories end to end, with the clock moved between two calls of one poll where a test needs a job to change
status in the middle of a listing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import Policy, Verdict
from airflow_batch_jobs.query import ALL_STATUSES, JobQuery
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.watch import IncompleteListingError, JobWatch

from .test_listing import T0, expect_children, expect_queue, job, parent

if TYPE_CHECKING:
    from collections.abc import Iterator

    from botocore.stub import Stubber

    from airflow_batch_jobs.policy import Decision
    from airflow_batch_jobs.query import ListCall

SECOND = 1000


class Clock:
    """A watch's clock, moved by hand (epoch ms)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def detail(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    """A DescribeJobs answer, with the members botocore's model requires (``startedAt`` among them)."""
    return {
        "jobId": job_id,
        "jobName": "fan",
        "jobQueue": "q",
        "jobDefinition": "d",
        "status": status,
        "startedAt": T0,
        "createdAt": T0,
        **extra,
    }


def expect_describe(stub: Stubber, ids: list[str], jobs: list[dict[str, Any]]) -> None:
    stub.add_response("describe_jobs", {"jobs": jobs}, {"jobs": ids})


def expect_statuses(stub: Stubber, answers: dict[str, list[dict[str, Any]]], selector: str = "arrayJobId") -> None:
    """One listing per status, in lifecycle order (the children or nodes of ``p`` / ``m``)."""
    for status in ALL_STATUSES:
        stub.add_response(
            "list_jobs",
            {"jobSummaryList": answers.get(status, [])},
            {selector: "p" if selector == "arrayJobId" else "m", "jobStatus": status, "maxResults": 1000},
        )


def states(decision: Decision) -> dict[str, str]:
    return {j.job_id: j.status for j in decision.jobs}


def array_parent(status: str, summary: dict[str, int] | None, size: int = 3, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {"size": size}
    if summary is not None:
        properties["statusSummary"] = summary
    return detail("p", status, arrayProperties=properties, **extra)


def child(index: int, status: str = "SUCCEEDED", **extra: Any) -> dict[str, Any]:
    return job(f"p:{index}", status, arrayProperties={"index": index}, **extra)


# -- 1. children listed status by status: complete before any verdict ------------------------------------------------


def test_array_job_id_a_child_missed_between_two_status_listings_is_found_before_any_verdict(hook_and_stub) -> None:
    """p:2 failed its first attempt between the RUNNING and SUCCEEDED listings and went back to RUNNABLE: two
    children seen of three is no verdict (before: both SUCCEEDED, so the poll succeeded while p:2 was retrying)."""
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(array_job_id="p"), Policy.build())
    expect_describe(stub, ["p"], [array_parent("PENDING", {"RUNNING": 1, "SUCCEEDED": 2})])
    expect_children(stub, "RUNNING", [])  # p:2 is back in RUNNABLE by now
    expect_children(stub, "SUCCEEDED", [child(0), child(1)])
    expect_statuses(stub, {"RUNNABLE": [child(2, "RUNNABLE")], "SUCCEEDED": [child(0), child(1)]})  # every status
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.WAITING
    assert states(decision) == {"p:0": "SUCCEEDED", "p:1": "SUCCEEDED", "p:2": "RUNNABLE"}


def test_array_job_id_a_child_missed_by_every_listing_gives_no_verdict(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(array_job_id="p"), Policy.build())
    expect_describe(stub, ["p"], [array_parent("PENDING", {"RUNNING": 1, "SUCCEEDED": 2})])
    expect_children(stub, "RUNNING", [])
    expect_children(stub, "SUCCEEDED", [child(0), child(1)])
    expect_statuses(stub, {"SUCCEEDED": [child(0), child(1)]})  # p:2 bounced between listings again
    with pytest.raises(IncompleteListingError, match="saw 2 of 3 children of array job p"):
        watch.poll(hook)


def test_array_job_id_a_complete_listing_needs_no_parent_after_the_first_poll(hook_and_stub) -> None:
    """The parent's size is read once (it never changes): later polls list every status, as before, and describe it
    again only after a listing that fell short."""
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(array_job_id="p"), Policy.build())
    expect_describe(stub, ["p"], [array_parent("PENDING", {"RUNNING": 3})])
    expect_children(stub, "RUNNING", [child(0, "RUNNING"), child(1, "RUNNING"), child(2, "RUNNING")])
    assert watch.poll(hook).verdict is Verdict.WAITING

    expect_statuses(stub, {"RUNNING": [child(2, "RUNNING")], "SUCCEEDED": [child(0), child(1)]})
    assert watch.poll(hook).verdict is Verdict.WAITING

    # p:2 missed: the parent is read (its summary, before listing again) and the children listed again, this poll
    expect_statuses(stub, {"SUCCEEDED": [child(0), child(1)]})
    expect_describe(stub, ["p"], [array_parent("PENDING", {"RUNNABLE": 1, "SUCCEEDED": 2})])
    expect_children(stub, "RUNNABLE", [child(2, "RUNNABLE")])
    assert states(watch.poll(hook))["p:2"] == "RUNNABLE"

    expect_statuses(stub, {"SUCCEEDED": [child(0), child(1), child(2)]})
    expect_describe(stub, ["p:0", "p:1", "p:2"], [detail(f"p:{i}", "SUCCEEDED") for i in range(3)])  # at the verdict
    assert watch.poll(hook).verdict is Verdict.SUCCESS


def test_a_child_seen_twice_keeps_its_later_sighting_and_is_finished_only_if_seen_finished(hook_and_stub) -> None:
    """Listings go in lifecycle order, so the later call is the newer sighting whichever way the job moved: p:0 seen
    RUNNABLE then RUNNING is RUNNING; p:1 seen RUNNING, then back in RUNNABLE (retry) after that listing was read,
    stays RUNNING, never counted finished; p:2 seen RUNNING then SUCCEEDED is finished."""
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(array_job_id="p"), Policy.build())
    expect_describe(stub, ["p"], [array_parent("PENDING", {})])  # an empty summary: every status is listed
    expect_statuses(
        stub,
        {
            "RUNNABLE": [child(0, "RUNNABLE")],
            "RUNNING": [child(0, "RUNNING"), child(1, "RUNNING"), child(2, "RUNNING")],
            "SUCCEEDED": [child(2)],
        },
    )
    decision = watch.poll(hook)
    assert states(decision) == {"p:0": "RUNNING", "p:1": "RUNNING", "p:2": "SUCCEEDED"}
    assert decision.verdict is Verdict.WAITING


def node(index: int, status: str = "SUCCEEDED", nodes: int = 3) -> dict[str, Any]:
    return job(f"m#{index}", status, nodeProperties={"nodeIndex": index, "isMainNode": index == 0, "numNodes": nodes})


def test_multi_node_job_id_nodes_are_counted_against_num_nodes(hook_and_stub) -> None:
    """Node summaries carry ``numNodes``: a free check (before: two nodes of three judged, and the poll succeeded)."""
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(multi_node_job_id="m"), Policy.build())
    expect_statuses(stub, {"SUCCEEDED": [node(0), node(1)]}, selector="multiNodeJobId")
    with pytest.raises(IncompleteListingError, match="saw 2 of 3 nodes of multi-node job m"):
        watch.poll(hook)
    expect_statuses(stub, {"RUNNING": [node(2, "RUNNING")], "SUCCEEDED": [node(0), node(1)]}, "multiNodeJobId")
    assert watch.poll(hook).verdict is Verdict.WAITING


def test_multi_node_job_without_nodes_is_judged_on_its_own(hook_and_stub) -> None:
    """No node listed: the parent (one DescribeJobs) says whether there is anything to wait for."""
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(multi_node_job_id="m"), Policy.build(min_jobs=0))
    expect_statuses(stub, {}, selector="multiNodeJobId")
    expect_describe(
        stub, ["m"], [detail("m", "RUNNABLE", nodeProperties={"numNodes": 3, "mainNode": 0, "nodeRangeProperties": []})]
    )
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.WAITING and states(decision) == {"m": "RUNNABLE"}  # before: 0 jobs, success

    expect_statuses(stub, {}, selector="multiNodeJobId")
    failed = detail(
        "m",
        "FAILED",
        statusReason="Dependent Job up failed",
        nodeProperties={"numNodes": 3, "mainNode": 0, "nodeRangeProperties": []},
    )
    expect_describe(stub, ["m"], [failed])
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.FAILURE and "Dependent Job up failed" in decision.message


class RacingHook(BatchJobsHook):
    """A hook on the emulator that moves its clock just before listing one status: a job can change status between
    two calls of one poll, as it can between two calls to the real service."""

    def __init__(self, emu: BatchEmulator, before: str, seconds: float) -> None:
        super().__init__(aws_conn_id=None, region_name="us-east-1")
        self.__dict__["conn"] = emu.client()
        self.emu, self.before, self.seconds = emu, before, seconds

    def list_jobs(self, call: ListCall, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        if call.params.get("jobStatus") == self.before and self.seconds:
            self.emu.advance(self.seconds)
            self.seconds = 0
        return super().list_jobs(call, *args, **kwargs)


RETRIED = {
    "runnable": 2,
    "starting": 2,
    "attempts": [{"exit_code": 1, "reason": "flaky", "duration": 100}, {"exit_code": 0, "duration": 10}],
}


def test_emulator_array_child_retrying_between_two_listings_is_not_judged_finished(batch_emulator) -> None:
    emu = batch_emulator
    emu.add_outcome({"runnable": 2, "starting": 2, "attempts": [{"duration": 10}]}, name="fan", indices=[0, 1])
    emu.add_outcome(RETRIED, name="fan", indices=[2])
    parent_id = emu.submit("fan", arrayProperties={"size": 3}, retryStrategy={"attempts": 2})
    # children appear at 1 s; p:2 runs from 6 s, fails at 106 s and is RUNNABLE again until 108 s
    emu.advance(100)
    watch = JobWatch(JobQuery.build(array_job_id=parent_id), Policy.build())
    decision = watch.poll(RacingHook(emu, before="RUNNING", seconds=7))  # p:2: RUNNING, then RUNNABLE from 106 s
    assert decision.verdict is Verdict.WAITING  # before: SUCCESS on p:0 and p:1 alone
    assert states(decision)[f"{parent_id}:2"] == "RUNNABLE"
    emu.advance(60)
    decision = watch.poll(RacingHook(emu, before="", seconds=0))
    assert decision.verdict is Verdict.SUCCESS and len(decision.jobs) == 3


# -- 2. runnable_timeout: the current RUNNABLE period only ------------------------------------------------------------


def test_runnable_timeout_restarts_when_the_summary_shows_the_job_ran_since(hook_and_stub) -> None:
    """Seen RUNNABLE, then RUNNABLE again with a ``startedAt``: it ran (and failed) in between. Before, both waits
    were added up: a failure at 700 s although the current wait was at most 200 s."""
    hook, stub = hook_and_stub
    clock = Clock()
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(runnable_timeout=600), clock)
    expect_queue(stub, [job("j", "RUNNABLE")])
    assert watch.poll(hook).verdict is Verdict.WAITING
    clock.now = T0 + 500 * SECOND
    ran = job("j", "RUNNABLE", startedAt=T0 + 100 * SECOND)
    expect_queue(stub, [ran])
    assert watch.poll(hook).verdict is Verdict.WAITING
    clock.now = T0 + 700 * SECOND
    expect_queue(stub, [ran])
    assert watch.poll(hook).verdict is Verdict.WAITING

    clock.now = T0 + 1200 * SECOND  # 700 s since it was seen back in RUNNABLE: the attempts confirm it is stuck
    expect_queue(stub, [ran])
    attempts = [{"startedAt": T0 + 100 * SECOND, "stoppedAt": T0 + 150 * SECOND, "container": {"exitCode": 1}}]
    expect_describe(stub, ["j"], [detail("j", "RUNNABLE", attempts=attempts)])
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.FAILURE and "stayed RUNNABLE for more than 600 s" in decision.message


def test_runnable_timeout_asks_the_attempts_before_failing_a_job(hook_and_stub) -> None:
    """A retried job's summary may keep its first ``startedAt``: before failing it, one DescribeJobs reads its
    attempts, and a wait that began when its last attempt stopped is measured from there."""
    hook, stub = hook_and_stub
    clock = Clock()
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(runnable_timeout=600), clock)
    first_start = T0 - 1000 * SECOND
    seen = job("j", "RUNNABLE", startedAt=first_start)
    expect_queue(stub, [seen])
    assert watch.poll(hook).verdict is Verdict.WAITING
    clock.now = T0 + 700 * SECOND
    expect_queue(stub, [seen])
    attempts = [
        {"startedAt": first_start, "stoppedAt": first_start + 10 * SECOND, "container": {"exitCode": 1}},
        {"startedAt": T0 + 100 * SECOND, "stoppedAt": T0 + 400 * SECOND, "container": {"exitCode": 1}},
    ]
    expect_describe(stub, ["j"], [detail("j", "RUNNABLE", attempts=attempts)])
    assert watch.poll(hook).verdict is Verdict.WAITING  # RUNNABLE again for 300 s only (before: a failure)

    clock.now = T0 + 1100 * SECOND
    expect_queue(stub, [seen])
    expect_describe(stub, ["j"], [detail("j", "RUNNABLE", attempts=attempts)])
    assert watch.poll(hook).verdict is Verdict.FAILURE


def test_emulator_runnable_timeout_does_not_add_up_two_waits_around_a_failed_attempt(batch_emulator) -> None:
    emu = batch_emulator
    emu.add_outcome(
        {"runnable": 500, "starting": 2, "attempts": [{"exit_code": 1, "duration": 10}, {"exit_code": 0}]},
        name="slow",
    )
    emu.submit("slow", retryStrategy={"attempts": 2})  # RUNNABLE 2-502 s, runs and fails, RUNNABLE 514-1014 s
    hook = RacingHook(emu, before="", seconds=0)
    watch = JobWatch(JobQuery.build(job_queue="queue"), Policy.build(runnable_timeout=600), clock=emu.now_ms)
    emu.advance(10)
    verdicts = []
    for _ in range(5):  # polls at 10, 310, 610, 910 and 1210 s: never while it runs
        verdicts.append(watch.poll(hook).verdict)
        emu.advance(300)
    assert verdicts == [Verdict.WAITING] * 4 + [Verdict.SUCCESS]  # before: a failure at 910 s


# -- 3. an array parent that failed without children ------------------------------------------------------------------


def test_a_childless_failed_array_parent_fails_at_once_with_its_own_reason(hook_and_stub) -> None:
    """Its dependency failed, so it never had children: the first poll fails it (before: "saw 0 of 3 children" until
    max_poll_errors, and for ever in reschedule mode, where each try starts afresh)."""
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(include_array_children=True))
    expect_queue(stub, [job("p", "FAILED", arrayProperties={"size": 3}, statusReason="Dependent Job up failed")])
    expect_statuses(stub, {})  # no statusSummary: every status is asked once, and holds nothing
    failed = array_parent("FAILED", None, statusReason="Dependent Job up failed")
    expect_describe(stub, ["p"], [failed])  # the details at the verdict
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.FAILURE
    assert "fan (p): FAILED, status reason 'Dependent Job up failed'" in decision.message
    assert "no attempt ran" in decision.message


def test_a_childless_failed_array_parent_with_an_empty_summary_costs_no_child_listing(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(include_array_children=True))
    none = dict.fromkeys(ALL_STATUSES, 0)
    expect_queue(stub, [parent("FAILED", none) | {"statusReason": "Dependent Job up failed"}])
    expect_describe(stub, ["p"], [array_parent("FAILED", none, statusReason="Dependent Job up failed")])
    assert watch.poll(hook).verdict is Verdict.FAILURE


def test_array_job_id_of_a_childless_failed_parent_fails_at_once(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(array_job_id="p"), Policy.build())
    expect_describe(stub, ["p"], [array_parent("FAILED", None, statusReason="Dependent Job up failed")])
    expect_statuses(stub, {})
    decision = watch.poll(hook)  # before: no child, so "0 of at least 1 job(s) found" until the task timed out
    assert decision.verdict is Verdict.FAILURE and "Dependent Job up failed" in decision.message


def test_an_array_parent_waiting_for_its_children_is_waiting_not_a_failed_poll(hook_and_stub) -> None:
    """A parent with no child yet (e.g. its dependency still running) stands for its children: WAITING, not an
    incomplete listing counted against max_poll_errors."""
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(include_array_children=True))
    expect_queue(stub, [job("p", "PENDING", arrayProperties={"size": 3})])
    expect_statuses(stub, {})
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.WAITING and states(decision) == {"p": "PENDING"}


def dependency_failed_array(emu: BatchEmulator) -> tuple[str, str]:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="upstream")
    upstream = emu.submit("upstream")
    emu.advance(60)
    parent_id = emu.submit("fan", arrayProperties={"size": 3}, dependsOn=[{"jobId": upstream}])
    emu.advance(10)
    return upstream, parent_id


@pytest.mark.parametrize("selector", ["include_array_children", "array_job_id"])
def test_emulator_a_childless_failed_array_parent_fails_at_the_first_poll(batch_emulator, selector: str) -> None:
    upstream, parent_id = dependency_failed_array(batch_emulator)
    if selector == "array_job_id":
        watch = JobWatch(JobQuery.build(array_job_id=parent_id), Policy.build())
    else:
        watch = JobWatch(JobQuery.build(job_queue="queue", job_name="fan"), Policy.build(include_array_children=True))
    decision = watch.poll(RacingHook(batch_emulator, before="", seconds=0))
    assert decision.verdict is Verdict.FAILURE and f"Dependent Job {upstream} failed" in decision.message


def test_emulator_reschedule_mode_fails_a_childless_failed_array_parent_in_its_first_try(
    batch_emulator, batch_aws_conn
) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor

    upstream, _ = dependency_failed_array(batch_emulator)
    sensor = BatchJobsSensor(
        task_id="wait", job_queue="queue", job_name="fan", include_array_children=True, mode="reschedule"
    )
    with pytest.raises(AirflowFailException, match=f"Dependent Job {upstream} failed"):
        sensor.poke({"ti": mock.MagicMock()})


# -- 4. children aged out of ListJobs (retention) --------------------------------------------------------------------


def test_children_aged_out_count_as_finished_from_the_parent_summary(hook_and_stub) -> None:
    """p:0 and p:1 finished long ago and are no longer listed: the parent's statusSummary (read before the listing)
    counts them SUCCEEDED, so the listing is complete (before: "saw 2 of 4 children", every poll)."""
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(include_array_children=True))
    expect_queue(stub, [parent("PENDING", {"RUNNING": 2, "SUCCEEDED": 2}, size=4)])
    expect_children(stub, "RUNNING", [child(2, "RUNNING"), child(3, "RUNNING")])
    expect_children(stub, "SUCCEEDED", [])  # aged out
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.WAITING
    assert states(decision) == {"p:2": "RUNNING", "p:3": "RUNNING", "p:0": "SUCCEEDED", "p:1": "SUCCEEDED"}
    aged = next(j for j in decision.jobs if j.job_id == "p:0")
    assert "Aged out of ListJobs" in (aged.status_reason or "")

    expect_queue(stub, [parent("SUCCEEDED", {"SUCCEEDED": 4}, size=4)])
    expect_children(stub, "SUCCEEDED", [child(2), child(3)])
    expect_describe(stub, ["p:2", "p:3"], [detail("p:2", "SUCCEEDED"), detail("p:3", "SUCCEEDED")])  # not p:0, p:1
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.SUCCESS and len(decision.jobs) == 4

    expect_queue(stub, [parent("SUCCEEDED", {"SUCCEEDED": 4}, size=4)])  # everything known: no child listing
    assert watch.poll(hook).verdict is Verdict.SUCCESS


def test_aged_out_failures_count_as_failures(hook_and_stub) -> None:
    """One of the two aged-out children FAILED (the summary says so, not which): it counts against max_failed_jobs,
    under a name that says what is known."""
    hook, stub = hook_and_stub
    policy = Policy.build(include_array_children=True, max_failed_jobs=1)
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), policy)
    expect_queue(stub, [parent("FAILED", {"SUCCEEDED": 3, "FAILED": 1}, size=4)])
    expect_children(stub, "SUCCEEDED", [child(2), child(3)])
    expect_children(stub, "FAILED", [])
    expect_describe(stub, ["p:2", "p:3"], [detail("p:2", "SUCCEEDED"), detail("p:3", "SUCCEEDED")])
    decision = watch.poll(hook)
    assert decision.verdict is Verdict.SUCCESS and "1 failure(s) tolerated" in decision.message
    (failed,) = decision.failed
    assert "p:0" in (failed.status_reason or "") and "p:1" in (failed.status_reason or "")

    strict = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(include_array_children=True))
    expect_queue(stub, [parent("FAILED", {"SUCCEEDED": 3, "FAILED": 1}, size=4)])
    expect_children(stub, "SUCCEEDED", [child(2), child(3)])
    expect_children(stub, "FAILED", [])
    expect_describe(stub, ["p:2", "p:3"], [detail("p:2", "SUCCEEDED"), detail("p:3", "SUCCEEDED")])
    assert strict.poll(hook).verdict is Verdict.FAILURE


def test_a_gap_the_summary_does_not_explain_is_still_no_verdict(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(include_array_children=True))
    expect_queue(stub, [parent("PENDING", {"RUNNING": 3, "SUCCEEDED": 1}, size=4)])
    expect_children(stub, "RUNNING", [child(1, "RUNNING"), child(2, "RUNNING")])  # p:3 missed: it is not finished
    expect_children(stub, "SUCCEEDED", [])  # p:0 aged out: explained
    running = {"RUNNING": [child(1, "RUNNING"), child(2, "RUNNING")]}
    expect_statuses(stub, running)
    with pytest.raises(IncompleteListingError, match="saw 2 of 4 children"):
        watch.poll(hook)


@pytest.fixture
def short_retention() -> Iterator[BatchEmulator]:
    with BatchEmulator(retention_seconds=3600) as emu:
        emu.setup()
        yield emu


def long_array(emu: BatchEmulator, failing: list[int]) -> str:
    """Ten children: 0-4 finish in seconds (``failing`` with exit code 1), 5-9 run for three hours."""
    quick = [i for i in range(5) if i not in failing]
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 10}]}, name="fan", indices=quick)
    emu.add_outcome({"attempts": [{"exit_code": 1, "duration": 10}]}, name="fan", indices=failing)
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 3 * 3600}]}, name="fan", indices=range(5, 10))
    parent_id = emu.submit("fan", arrayProperties={"size": 10})
    emu.advance(2 * 3600)  # the wait starts late: children 0-4 aged out an hour ago
    return parent_id


def wait(emu: BatchEmulator, watch: JobWatch) -> Decision:
    hook = RacingHook(emu, before="", seconds=0)
    for _ in range(20):
        decision = watch.poll(hook)
        if decision.verdict is not Verdict.WAITING:
            return decision
        emu.advance(1800)
    raise AssertionError("no verdict")


@pytest.mark.parametrize("selector", ["include_array_children", "array_job_id"])
def test_emulator_a_long_array_whose_early_children_aged_out_ends_with_every_child(short_retention, selector) -> None:
    parent_id = long_array(short_retention, failing=[])
    if selector == "array_job_id":
        watch = JobWatch(JobQuery.build(array_job_id=parent_id), Policy.build())
    else:
        watch = JobWatch(JobQuery.build(job_queue="queue", job_name="fan"), Policy.build(include_array_children=True))
    decision = wait(short_retention, watch)
    assert decision.verdict is Verdict.SUCCESS and len(decision.jobs) == 10


def test_emulator_an_aged_out_failure_still_fails_the_wait(short_retention) -> None:
    """Before, the array_job_id wait judged only the children still listed: a success, although child 3 failed."""
    parent_id = long_array(short_retention, failing=[3])
    decision = wait(short_retention, JobWatch(JobQuery.build(array_job_id=parent_id), Policy.build(fail_fast=False)))
    assert decision.verdict is Verdict.FAILURE and len(decision.jobs) == 10
    tolerant = JobWatch(JobQuery.build(array_job_id=parent_id), Policy.build(max_failed_jobs=1))
    assert wait(short_retention, tolerant).verdict is Verdict.SUCCESS


# -- the async path (trigger) takes the same steps -------------------------------------------------------------------


class AsyncOverSync:
    """The hook's async calls answered by a Stubber-backed hook: a poll's steps are written once for both paths,
    only the I/O differs, so the same queued answers must give the same verdicts."""

    def __init__(self, hook: BatchJobsHook) -> None:
        self.hook = hook

    async def afind_jobs(self, client: Any, query: JobQuery, **kwargs: Any) -> list[dict[str, Any]]:
        return self.hook.find_jobs(query, **kwargs)

    async def adescribe_jobs(self, client: Any, job_ids: list[str]) -> Any:
        return self.hook.describe_jobs(job_ids)


async def test_async_path_counts_children_and_reads_attempts_before_a_runnable_failure(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    ahook: Any = AsyncOverSync(hook)
    watch = JobWatch(JobQuery.build(array_job_id="p"), Policy.build())
    expect_describe(stub, ["p"], [array_parent("PENDING", {"RUNNING": 1, "SUCCEEDED": 2})])
    expect_children(stub, "RUNNING", [])
    expect_children(stub, "SUCCEEDED", [child(0), child(1)])
    expect_statuses(stub, {"SUCCEEDED": [child(0), child(1)]})
    with pytest.raises(IncompleteListingError):
        await watch.apoll(ahook, None)

    clock = Clock()
    waiting = JobWatch(JobQuery.build(job_queue="q", job_name="fan"), Policy.build(runnable_timeout=600), clock)
    seen = job("j", "RUNNABLE", startedAt=T0 - 1000 * SECOND)
    expect_queue(stub, [seen])
    assert (await waiting.apoll(ahook, None)).verdict is Verdict.WAITING
    clock.now = T0 + 700 * SECOND
    expect_queue(stub, [seen])
    attempts = [{"startedAt": T0 + 100 * SECOND, "stoppedAt": T0 + 400 * SECOND, "container": {"exitCode": 1}}]
    expect_describe(stub, ["j"], [detail("j", "RUNNABLE", attempts=attempts)])
    assert (await waiting.apoll(ahook, None)).verdict is Verdict.WAITING
