"""Which ListJobs calls a poll makes: array children by their parent's statusSummary, and where paging stops.

botocore's Stubber fails on any call not queued in this order, so each test states exactly the calls a poll makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.query import ALL_STATUSES, JobQuery
from airflow_batch_jobs.watch import LISTING_LAG_MS, JobListing

if TYPE_CHECKING:
    from botocore.stub import Stubber

MINUTE = 60_000
T0 = 1_800_000_000_000  # epoch ms


def job(job_id: str, status: str = "SUCCEEDED", created: int = T0, **extra: Any) -> dict[str, Any]:
    return {"jobId": job_id, "jobName": "fan", "status": status, "createdAt": created, **extra}


def parent(status: str, summary: dict[str, int] | None, size: int = 3) -> dict[str, Any]:
    properties: dict[str, Any] = {"size": size}
    if summary is not None:
        properties["statusSummary"] = summary
    return job("p", status, arrayProperties=properties)


def expect_queue(stub: Stubber, jobs: list[dict[str, Any]]) -> None:
    stub.add_response(
        "list_jobs",
        {"jobSummaryList": jobs},
        {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["fan"]}], "maxResults": 100},
    )


def expect_children(stub: Stubber, status: str, jobs: list[dict[str, Any]]) -> None:
    stub.add_response(
        "list_jobs", {"jobSummaryList": jobs}, {"arrayJobId": "p", "jobStatus": status, "maxResults": 1000}
    )


def states(jobs: list[dict[str, Any]]) -> dict[str, str]:
    return {j["jobId"]: j["status"] for j in jobs}


def array_listing() -> JobListing:
    return JobListing(JobQuery.build(job_queue="q", job_name="fan"), include_array_children=True)


def test_children_are_listed_only_in_the_statuses_their_summary_shows_changed(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    listing = array_listing()
    expect_queue(stub, [parent("PENDING", {"RUNNING": 2, "SUCCEEDED": 1})])
    expect_children(stub, "RUNNING", [job("p:0", "RUNNING"), job("p:1", "RUNNING")])
    expect_children(stub, "SUCCEEDED", [job("p:2")])
    assert states(listing.collect(hook)) == {"p:0": "RUNNING", "p:1": "RUNNING", "p:2": "SUCCEEDED"}

    # p:2 is known finished: only the newly succeeded children are worth a listing
    expect_queue(stub, [parent("SUCCEEDED", {"SUCCEEDED": 3})])
    expect_children(stub, "SUCCEEDED", [job("p:0"), job("p:1"), job("p:2")])
    assert set(states(listing.collect(hook)).values()) == {"SUCCEEDED"}

    # every child known finished: no child listing at all
    expect_queue(stub, [parent("SUCCEEDED", {"SUCCEEDED": 3})])
    assert len(listing.collect(hook)) == 3


def test_a_summary_that_lags_behind_the_children_falls_back_to_every_status(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    listing = array_listing()
    expect_queue(stub, [parent("PENDING", {"RUNNING": 3})])  # stale: p:2 has already failed
    expect_children(stub, "RUNNING", [job("p:0", "RUNNING"), job("p:1", "RUNNING")])
    for status in ALL_STATUSES:
        answer = {"RUNNING": [job("p:0", "RUNNING"), job("p:1", "RUNNING")], "FAILED": [job("p:2", "FAILED")]}
        expect_children(stub, status, answer.get(status, []))
    assert states(listing.collect(hook)) == {"p:0": "RUNNING", "p:1": "RUNNING", "p:2": "FAILED"}


def test_a_submitted_parent_has_no_children_to_list(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    expect_queue(stub, [parent("SUBMITTED", {})])
    assert states(array_listing().collect(hook)) == {"p": "SUBMITTED"}


def newest_first_listing(**query: Any) -> JobListing:
    return JobListing(JobQuery.build(job_queue="q", **query))


def expect_pages(stub: Stubber, flt: dict[str, Any], pages: list[list[dict[str, Any]]], more: bool = False) -> None:
    """The pages a listing is expected to read; ``more``: the last one still offers a next page (not to be read)."""
    base = {"jobQueue": "q", "filters": [flt], "maxResults": 100}
    for number, page in enumerate(pages):
        answer: dict[str, Any] = {"jobSummaryList": page}
        if more or number < len(pages) - 1:
            answer["nextToken"] = f"t{number + 1}"
        stub.add_response("list_jobs", answer, {**base, "nextToken": f"t{number}"} if number else base)


EVERY_STATUS = {"name": "AFTER_CREATED_AT", "values": ["0"]}


def test_paging_stops_below_created_after(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    listing = newest_first_listing(created_after=T0)
    recent = [job("new-1", "RUNNING", T0 + 2 * MINUTE), job("new-0", "RUNNING", T0 + MINUTE)]
    # the second page reaches jobs older than created_after: the (yesterday's) third is never asked for
    expect_pages(stub, EVERY_STATUS, [recent, [job("old-9", created=T0 - MINUTE)]], more=True)
    assert [j["jobId"] for j in listing.collect(hook)] == ["new-1", "new-0"]


def history() -> list[list[dict[str, Any]]]:
    """Three pages, newest first: one job running, the rest finished well before it."""
    return [
        [job("j5", "RUNNING", T0), job("j4", created=T0 - MINUTE)],
        [job("j3", created=T0 - 30 * MINUTE), job("j2", "FAILED", T0 - 40 * MINUTE)],
        [job("j1", created=T0 - 50 * MINUTE)],
    ]


def test_paging_stops_where_every_older_job_is_known_finished(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    listing = newest_first_listing()
    expect_pages(stub, EVERY_STATUS, history())
    assert len(listing.collect(hook)) == 5
    assert listing.settled_before == T0 - LISTING_LAG_MS  # j5 is active, but newer than the lag window

    expect_pages(
        stub, EVERY_STATUS, history()[:2], more=True
    )  # page 2 ends below what is settled: page 3 not asked for
    again = listing.collect(hook)
    assert states(again) == {"j5": "RUNNING", "j4": "SUCCEEDED", "j3": "SUCCEEDED", "j2": "FAILED", "j1": "SUCCEEDED"}


def test_an_active_job_holds_the_settled_point_back(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    listing = newest_first_listing()
    pages = history()
    pages[2] = [job("j1", "RUNNABLE", T0 - 50 * MINUTE)]
    expect_pages(stub, EVERY_STATUS, pages)
    listing.collect(hook)
    assert listing.settled_before == T0 - 50 * MINUTE
    expect_pages(stub, EVERY_STATUS, pages)  # the oldest job may still change: every page again
    assert states(listing.collect(hook))["j1"] == "RUNNABLE"


def test_an_unknown_job_below_the_settled_point_means_read_every_page(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    listing = newest_first_listing()
    expect_pages(stub, EVERY_STATUS, history())
    listing.collect(hook)
    late = history()
    late[1].append(job("late", "FAILED", T0 - 45 * MINUTE))  # visible only now, long after its creation
    expect_pages(stub, EVERY_STATUS, late)
    assert states(listing.collect(hook))["late"] == "FAILED"


def test_pages_out_of_order_mean_read_every_page(hook_and_stub) -> None:
    """A backend that lists oldest first (moto does) must never be cut short."""
    hook, stub = hook_and_stub
    listing = newest_first_listing(created_after=T0 - 45 * MINUTE)
    every = [j for page in history() for j in page]
    oldest_first = [every[:-3:-1], every[-3:-5:-1], every[:1]]
    expect_pages(stub, EVERY_STATUS, oldest_first)
    assert sorted(states(listing.collect(hook))) == ["j2", "j3", "j4", "j5"]


def test_job_name_listings_are_never_cut_short(hook_and_stub) -> None:
    """The service groups JOB_NAME results by name rather than by time."""
    hook, stub = hook_and_stub
    listing = newest_first_listing(job_name="fan", created_after=T0 - 45 * MINUTE)
    expect_pages(stub, {"name": "JOB_NAME", "values": ["fan"]}, history())
    assert sorted(states(listing.collect(hook))) == ["j2", "j3", "j4", "j5"]
    assert listing.settled_before is None


def test_finished_jobs_already_known_come_back_as_the_kept_summaries(hook_and_stub) -> None:
    """The page's own copies die young instead of piling up in the collector's oldest generation."""
    hook, stub = hook_and_stub
    listing = newest_first_listing(job_name="fan")
    flt = {"name": "JOB_NAME", "values": ["fan"]}
    expect_pages(stub, flt, history())
    first = {j["jobId"]: j for j in listing.collect(hook)}
    expect_pages(stub, flt, history())
    second = {j["jobId"]: j for j in listing.collect(hook)}
    assert all(second[i] is first[i] for i in ("j4", "j3", "j2", "j1"))
    assert second["j5"] is not first["j5"] and second["j5"] == first["j5"]  # active: the new sighting
