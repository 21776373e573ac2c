from __future__ import annotations

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.query import JobQuery


def _summary(job_id: str, name: str = "etl-a", status: str = "SUCCEEDED", created: int = 1) -> dict:
    return {"jobId": job_id, "jobName": name, "status": status, "createdAt": created}


def test_queue_listing_pages_with_one_filter_and_largest_page(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    query = JobQuery.build(job_queue="q", job_name="ETL-*", created_after=10**12)
    base = {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["ETL-*"]}], "maxResults": 100}
    stub.add_response("list_jobs", {"jobSummaryList": [_summary("1", created=10**12)], "nextToken": "t1"}, base)
    stub.add_response(
        "list_jobs",
        {"jobSummaryList": [_summary("2", "other"), _summary("3", created=10**12 + 5)], "nextToken": "t2"},
        {**base, "nextToken": "t1"},
    )
    stub.add_response("list_jobs", {"jobSummaryList": [_summary("4", created=5)]}, {**base, "nextToken": "t2"})
    found = hook.find_jobs(query)
    # "other" fails the name, "4" was created before created_after: both re-checked locally.
    assert [j["jobId"] for j in found] == ["1", "3"]


def test_child_listing_merges_statuses_and_keeps_latest_sighting(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    query = JobQuery.build(array_job_id="p")
    pages = {"RUNNING": [_summary("p:0", status="RUNNING")], "SUCCEEDED": [_summary("p:0"), _summary("p:1")]}
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        stub.add_response(
            "list_jobs",
            {"jobSummaryList": pages.get(status, [])},
            {"arrayJobId": "p", "jobStatus": status, "maxResults": 1000},
        )
    found = hook.find_jobs(query)
    assert [(j["jobId"], j["status"]) for j in found] == [("p:0", "SUCCEEDED"), ("p:1", "SUCCEEDED")]


def test_describe_250_ids_in_three_calls_order_kept_duplicates_dropped(hook_and_stub) -> None:
    hook, stub = hook_and_stub
    ids = [f"id-{i}" for i in range(250)]
    asked = [*ids, "id-3", "id-7"]
    for chunk in (ids[:100], ids[100:200], ids[200:]):
        # answer in reverse order and leave one id out: the hook restores order and reports it missing
        answer = [{"jobId": i, "jobName": "n", "jobQueue": "q", "status": "RUNNING", "startedAt": 1,
                   "jobDefinition": "d"} for i in reversed(chunk) if i != "id-150"]  # fmt: skip
        stub.add_response("describe_jobs", {"jobs": answer}, {"jobs": chunk})
    result = hook.describe_jobs(asked)
    assert [j["jobId"] for j in result.jobs] == [i for i in ids if i != "id-150"]
    assert result.missing == ["id-150"]


def test_standard_retry_mode_unless_connection_sets_retries() -> None:
    assert BatchJobsHook(aws_conn_id=None).config.retries == {"mode": "standard"}
    custom = BatchJobsHook(aws_conn_id=None, config={"retries": {"mode": "adaptive", "max_attempts": 3}})
    assert custom.config.retries == {"mode": "adaptive", "max_attempts": 3}


def test_describe_jobs_takes_a_single_id_as_one_id(hook_and_stub) -> None:
    """A string is one id, not 36 one-letter ids (each reported missing)."""
    hook, stub = hook_and_stub
    job_id = "24fa2d7a-64c4-49d2-8b47-f8da4fbde8e9"
    detail = {"jobId": job_id, "jobName": "n", "jobQueue": "q", "status": "RUNNING", "startedAt": 1,
              "jobDefinition": "d"}  # fmt: skip
    stub.add_response("describe_jobs", {"jobs": [detail]}, {"jobs": [job_id]})
    result = hook.describe_jobs(job_id)
    assert [j["jobId"] for j in result.jobs] == [job_id] and result.missing == []


async def test_adescribe_jobs_takes_a_single_id_as_one_id() -> None:
    asked: list[list[str]] = []

    class Client:
        async def describe_jobs(self, jobs: list[str]) -> dict:
            asked.append(jobs)
            return {"jobs": [{"jobId": "only"}]}

    result = await BatchJobsHook(aws_conn_id=None).adescribe_jobs(Client(), "only")
    assert asked == [["only"]] and result.missing == []
