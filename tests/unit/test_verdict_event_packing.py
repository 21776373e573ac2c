"""The compact event names the records' jobs in order, runs of array children packed: whatever the order the listing
gave them in, the worker unpacks the same ids in the same order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.verdict_event import entry_ids, pack_entries

PARENTS = ("0196d5c2-aaaa-7000-8000-000000000001", "0196d5c2-aaaa-7000-8000-000000000002")
ids = st.one_of(
    st.builds(lambda p, i: f"{p}:{i}", st.sampled_from(PARENTS), st.integers(0, 12)),
    st.sampled_from([*PARENTS, "plain-job", "0196d5c2-bbbb-7000-8000-000000000003#2"]),
)


def described(job_id: str) -> JobView:
    return JobView({"jobId": job_id, "jobQueue": "q", "status": "SUCCEEDED", "attempts": []})


@given(st.lists(ids, max_size=40))
def test_packed_ids_unpack_to_the_same_ids_in_the_same_order(job_ids: list[str]) -> None:
    entries = pack_entries(described(i) for i in job_ids)
    assert [job_id for entry in entries for job_id in entry_ids(entry)] == job_ids
    assert len(entries) <= len(job_ids)


def test_runs_either_way_are_one_entry_each() -> None:
    p, q = PARENTS
    job_ids = [f"{p}:{i}" for i in range(5)] + [f"{p}:{i}" for i in (9, 8, 7)] + [f"{q}:0", f"{q}:2", "plain-job"]
    assert pack_entries(described(i) for i in job_ids) == [[p, 0, 4], [p, 9, 7], f"{q}:0", f"{q}:2", "plain-job"]
