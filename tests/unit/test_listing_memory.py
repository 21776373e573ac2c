"""A listing's memory and its page cut-off, each on its own (no server): what each remembers and decides."""

from __future__ import annotations

from typing import Any

from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.watch import (
    LISTING_LAG_MS,
    DescribedJobs,
    FinishedJobs,
    PageCutoff,
    RunnablePeriods,
    SettledPoint,
    account_for_children,
    aged_out_children,
    is_aged_out,
)

from .test_listing import MINUTE, T0, job


def ids(jobs: list[dict[str, Any]]) -> list[str]:
    return [j["jobId"] for j in jobs]


# -- PageCutoff ------------------------------------------------------------------------------------------------------


def cutoff(floor: int = T0, known: dict[str, Any] | None = None) -> PageCutoff:
    return PageCutoff(floor, known or {}, JobQuery.build(job_queue="q").matches)


def test_cutoff_stops_at_the_first_page_that_reaches_below_the_floor() -> None:
    stop = cutoff(known={"old": job("old", created=T0 - MINUTE)})
    assert not stop([job("a", "RUNNING", T0 + 2 * MINUTE), job("b", "RUNNING", T0 + MINUTE)])
    assert stop([job("c", "RUNNING", T0), job("old", created=T0 - MINUTE)])


def test_cutoff_reads_every_page_once_a_page_is_out_of_order() -> None:
    stop = cutoff()
    assert not stop([job("a", created=T0 + MINUTE)])
    assert not stop([job("b", created=T0 + 2 * MINUTE)])  # newer than the previous page's last job
    assert stop.read_all
    assert not stop([job("c", created=T0 - MINUTE)])  # below the floor, but the premise is gone


def test_cutoff_reads_every_page_for_an_unknown_job_below_the_floor_or_one_without_created_at() -> None:
    unknown = cutoff()
    assert not unknown([job("late", "FAILED", T0 - MINUTE)])  # not known finished: maybe more like it further on
    assert unknown.read_all
    undated = cutoff()
    assert not undated([{"jobId": "x", "jobName": "fan", "status": "RUNNING"}])
    assert undated.read_all


def test_cutoff_ignores_unknown_jobs_the_query_does_not_match() -> None:
    stop = PageCutoff(T0, {}, JobQuery.build(job_queue="q", job_name="fan").matches)
    assert stop([{**job("other", created=T0 - MINUTE), "jobName": "other"}])


# -- FinishedJobs ----------------------------------------------------------------------------------------------------


def test_finished_jobs_come_back_once_they_age_out_and_only_finished_ones_are_kept() -> None:
    memory = FinishedJobs()
    assert ids(memory.recall("", [job("a"), job("b", "RUNNING")])) == ["a", "b"]
    assert ids(memory.recall("", [job("b", "RUNNING")])) == ["b", "a"]  # a aged out; b was never finished
    assert set(memory.known("") or {}) == {"a"}
    assert memory.known("p") is None  # each listing its own


def test_finished_counts_include_children_known_by_count_only() -> None:
    memory = FinishedJobs()
    memory.recall("p", [job("p:2"), job("p:3", "FAILED")])
    memory.note_aged_out("p", [{"jobId": "p:0", "status": "SUCCEEDED"}, {"jobId": "p:1", "status": "SUCCEEDED"}])
    assert memory.counts("p") == {"SUCCEEDED": 3, "FAILED": 1}
    memory.note_aged_out("p", [])  # replaced each poll, never added up
    assert memory.counts("p") == {"SUCCEEDED": 1, "FAILED": 1}


# -- SettledPoint ----------------------------------------------------------------------------------------------------


def test_settled_point_is_held_back_by_the_oldest_active_job_and_the_listing_lag() -> None:
    point = SettledPoint(newest_first=True)
    point.update([job("new", "RUNNING", T0), job("old", created=T0 - 60 * MINUTE)])
    assert point.before == T0 - LISTING_LAG_MS
    point.update([job("new", created=T0), job("old", "RUNNABLE", T0 - 60 * MINUTE)])
    assert point.before == T0 - 60 * MINUTE
    point.update([job("x", created=T0), {"jobId": "y", "status": "SUCCEEDED"}])
    assert point.before is None  # a job without createdAt: nothing can be settled


def test_settled_point_is_none_for_listings_not_newest_first() -> None:
    point = SettledPoint(newest_first=False)
    point.update([job("a", created=T0)])
    assert point.before is None


# -- DescribedJobs ---------------------------------------------------------------------------------------------------


def test_described_jobs_are_pending_in_full_calls_of_100_and_never_twice() -> None:
    details = DescribedJobs()
    finished = [job(f"j{i}") for i in range(150)] + [job("r", "RUNNING")]
    assert details.pending(finished) == [f"j{i}" for i in range(100)]
    assert len(details.pending(finished, all_of_them=True)) == 150
    details.absorb([{**job("j0"), "attempts": []}])
    assert "j0" not in details.pending(finished, all_of_them=True)
    assert details.view(job("j0")).raw.get("attempts") == []  # the detail's view, not the summary's


def test_stand_ins_for_aged_out_children_are_never_described() -> None:
    aged = {**job("p:0"), "agedOutOfListJobs": True}
    assert DescribedJobs().pending([aged], all_of_them=True) == []


# -- RunnablePeriods -------------------------------------------------------------------------------------------------


def test_a_runnable_period_ends_when_the_job_is_seen_elsewhere_or_has_run_since() -> None:
    periods = RunnablePeriods()
    periods.observe([job("a", "RUNNABLE"), job("b", "RUNNABLE")], T0)
    periods.observe([job("a", "RUNNABLE"), job("b", "RUNNING")], T0 + MINUTE)
    assert periods.since == {"a": T0}
    periods.observe([job("a", "RUNNABLE", startedAt=T0 + 30_000), job("b", "RUNNABLE")], T0 + 2 * MINUTE)
    assert periods.since == {"a": T0 + 2 * MINUTE, "b": T0 + 2 * MINUTE}  # a ran in between, unseen
    periods.observe([job("a", "RUNNABLE", startedAt=T0 + 30_000)], T0 + 3 * MINUTE)
    assert periods.since["a"] == T0 + 2 * MINUTE  # same startedAt: the same period


def test_a_runnable_period_begins_no_earlier_than_the_last_attempt_stopped() -> None:
    periods = RunnablePeriods()
    periods.observe([job("a", "RUNNABLE"), job("b", "RUNNABLE"), job("c", "RUNNABLE")], T0)
    periods.correct(
        [
            {**job("a", "RUNNABLE"), "attempts": [{"startedAt": T0 + 1000, "stoppedAt": T0 + 5000}]},
            {**job("b", "RUNNABLE"), "attempts": [{"startedAt": T0 - 9000, "stoppedAt": T0 - 5000}]},
            job("c", "STARTING"),  # it moved on after the listing
        ]
    )
    assert periods.since == {"a": T0 + 5000, "b": T0}


# -- children: complete, stood for, or aged out ----------------------------------------------------------------------


def parent(status: str, summary: dict[str, int] | None, size: int = 4) -> dict[str, Any]:
    properties: dict[str, Any] = {"size": size}
    if summary is not None:
        properties["statusSummary"] = summary
    return job("p", status, arrayProperties=properties)


def kid(index: int, status: str = "SUCCEEDED") -> dict[str, Any]:
    return job(f"p:{index}", status, arrayProperties={"index": index})


def test_every_child_seen_is_complete_and_a_parent_without_children_stands_for_them() -> None:
    kids = [kid(i) for i in range(4)]
    assert account_for_children(parent("SUCCEEDED", {"SUCCEEDED": 4}), kids) == kids
    assert account_for_children(parent("SUBMITTED", None), []) == []
    assert account_for_children(parent("FAILED", None), []) == []  # a failed dependency: no child ever
    assert account_for_children(parent("PENDING", dict.fromkeys(("RUNNING", "FAILED"), 0)), []) == []
    assert account_for_children(parent("PENDING", {"RUNNING": 4}), []) is None  # children it has, not listed


def test_missing_children_counted_finished_by_the_summary_get_stand_ins_by_id() -> None:
    kids = [kid(1, "RUNNING"), kid(3)]
    stand_ins = aged_out_children(parent("PENDING", {"RUNNING": 1, "SUCCEEDED": 3}), kids)
    assert stand_ins is not None and all(map(is_aged_out, stand_ins))
    assert [(j["jobId"], j["status"], j["arrayProperties"]["index"]) for j in stand_ins] == [
        ("p:0", "SUCCEEDED", 0),
        ("p:2", "SUCCEEDED", 2),
    ]


def test_a_succeeded_parent_proves_its_missing_children_succeeded_without_a_summary() -> None:
    stand_ins = aged_out_children(parent("SUCCEEDED", None), [kid(3)])
    assert stand_ins is not None and ids(stand_ins) == ["p:0", "p:1", "p:2"]
    assert aged_out_children(parent("FAILED", None), [kid(3)]) is None  # which failed is not known


def test_missing_children_of_mixed_outcomes_are_named_for_what_is_known() -> None:
    stand_ins = aged_out_children(parent("FAILED", {"SUCCEEDED": 3, "FAILED": 1}), [kid(2), kid(3)])
    assert stand_ins is not None
    assert sorted(j["status"] for j in stand_ins) == ["FAILED", "SUCCEEDED"]
    assert all("p:0, p:1" in j["statusReason"] and not j["jobId"].startswith("p:0") for j in stand_ins)


def test_a_gap_the_summary_does_not_cover_is_not_explained() -> None:
    # p:1 missed by the listing (a retry sent it back to RUNNABLE): the summary counts only one child finished
    assert aged_out_children(parent("PENDING", {"RUNNING": 3, "SUCCEEDED": 1}), [kid(2, "RUNNING"), kid(3)]) is None
    # a summary counting more finished children than are missing did not predate the listing: not trusted
    assert aged_out_children(parent("SUCCEEDED", {"SUCCEEDED": 4}), [kid(1, "RUNNING"), kid(2), kid(3)]) is None
