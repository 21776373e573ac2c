"""A wait's memory between operator instances (``airflow_batch_jobs.wait_state``): small, bounded, JSON-native; and
the rules by which an instance that may have forgotten refuses a success it cannot prove."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_batch_jobs.policy import Decision, Policy, Verdict
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.wait_state import (
    MAX_MEMORY_BYTES,
    NOT_PROVEN,
    RETENTION_MIN_S,
    Continuity,
    WaitMemory,
    pack_ids,
    unpack_ids,
)
from airflow_batch_jobs.watch import REMEMBERED, JobWatch

T0 = 1_795_000_000_000
DAY_MS = 86_400_000
PARENT = "0196d5c2-aaaa-7000-8000-000000000001"


def failed(job_id: str, created: int = T0, code: int = 1) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "jobName": "etl",
        "status": "FAILED",
        "createdAt": created,
        "statusReason": "Essential container in task exited",
        "container": {"exitCode": code, "reason": "boom", "environment": [{"name": "TOKEN", "value": "s3cr3t"}]},
    }


def watch_knowing(jobs_by_listing: dict[str, list[dict[str, Any]]], policy: Policy | None = None) -> JobWatch:
    watch = JobWatch(JobQuery.build(job_queue="q", job_name="etl*"), policy or Policy.build(fail_fast=False))
    for listing, jobs in jobs_by_listing.items():
        watch.listing.finished.recall(listing, jobs)
    return watch


def test_array_children_pack_into_index_ranges_and_back() -> None:
    ids = [f"{PARENT}:{i}" for i in [*range(500), 731, 733, 734]] + ["plain-id", f"{PARENT}:007"]
    packed = pack_ids(ids)
    assert f"{PARENT}:0-499,731,733-734" in packed and "plain-id" in packed and f"{PARENT}:007" in packed
    assert sorted(unpack_ids(packed)) == sorted(ids)


def test_the_memory_keeps_what_can_change_a_verdict_apart_from_plain_successes_and_nothing_secret() -> None:
    ok = {"jobId": "ok", "jobName": "etl", "status": "SUCCEEDED", "createdAt": T0, "container": {"exitCode": 0}}
    watch = watch_knowing({"": [failed("bad"), ok, failed("coded", code=4)]}, Policy.build(success_exit_codes=[4]))
    memory = WaitMemory.capture(watch, fingerprint="f", seen_ms=T0)
    assert set(memory.finished[""]) == {"bad", "coded"}  # a FAILED job with a success code: details may differ
    assert set(memory.succeeded[""]) == {"ok"}  # kept for the count (min_jobs) and the records
    data = memory.to_json()
    assert "s3cr3t" not in json.dumps(data) and "environment" not in json.dumps(data)
    back = WaitMemory.from_json(json.loads(json.dumps(data)))
    assert back.finished == memory.finished and back.succeeded == memory.succeeded and back.seen_ms == T0


def test_a_plain_success_that_aged_out_still_counts_after_a_restore() -> None:
    """Found by make fuzz: reschedule, min_jobs=2, the first job's success aged out before the second finished; the
    next try counted one job and waited to its timeout."""
    ok = {"jobId": "ok", "jobName": "etl", "status": "SUCCEEDED", "createdAt": T0, "container": {"exitCode": 0}}
    memory = WaitMemory.from_json(WaitMemory.capture(watch_knowing({"": [ok]}), fingerprint="f").to_json())
    watch = watch_knowing({})
    memory.restore(watch)
    listed = watch.listing.finished.recall("", [{**ok, "jobId": "later", "createdAt": T0 + 1}])
    by_id = {job["jobId"]: job for job in listed}
    assert set(by_id) == {"ok", "later"} and by_id["ok"][REMEMBERED] and REMEMBERED not in by_id["later"]


def test_past_its_bound_plain_successes_go_first_and_the_memory_stays_complete() -> None:
    oks = [
        {"jobId": f"ok-{i:05d}-{'x' * 30}", "jobName": f"etl-{i}", "status": "SUCCEEDED", "createdAt": T0 + i}
        for i in range(2000)
    ]
    watch = watch_knowing({"": [failed("bad"), *oks]}, Policy.build(fail_fast=False))
    watch.runnable.observe([{"jobId": "waiting", "status": "RUNNABLE", "createdAt": T0}], T0)
    data = WaitMemory.capture(watch, fingerprint="f", seen_ms=T0).to_json()
    assert len(json.dumps(data)) <= MAX_MEMORY_BYTES
    back = WaitMemory.from_json(data)
    assert back.unknown is None  # a forgotten plain success cannot flip a verdict
    assert set(back.finished[""]) == {"bad"} and "waiting" in back.runnable
    assert 0 < len(back.succeeded[""]) < 2000


def test_restored_jobs_count_when_the_listing_no_longer_returns_them_and_yield_to_its_copy() -> None:
    memory = WaitMemory.capture(watch_knowing({"": [failed("bad"), failed("still")]}), fingerprint="f")
    watch = watch_knowing({})
    memory.restore(watch)
    listed = watch.listing.finished.recall("", [failed("still", code=2)])
    by_id = {job["jobId"]: job for job in listed}
    assert by_id["bad"][REMEMBERED] and by_id["bad"]["container"]["exitCode"] == 1  # aged out: as remembered
    assert REMEMBERED not in by_id["still"] and by_id["still"]["container"]["exitCode"] == 2  # the listing's copy
    assert watch.listing.to_describe(listed, all_of_them=True) == ["still"]  # never describe what aged out


def test_a_10000_child_array_costs_a_few_hundred_bytes() -> None:
    children = [failed(f"{PARENT}:{i}") for i in range(10_000) if i % 1000 < 300]  # 3,000 failed in 10 runs
    runnable = [
        {"jobId": f"{PARENT}:{i}", "status": "RUNNABLE", "createdAt": T0} for i in range(10_000) if i % 1000 >= 300
    ]
    watch = watch_knowing({PARENT: children})
    watch.runnable.observe(runnable, T0)
    data = WaitMemory.capture(watch, fingerprint="f", seen_ms=T0).to_json()
    assert len(json.dumps(data)) < 1500, json.dumps(data)
    back = WaitMemory.from_json(data)
    assert len(back.finished[PARENT]) == 3000 and len(back.runnable) == 7000 and back.unknown is None


def test_past_its_bound_the_memory_says_it_is_incomplete_and_a_success_is_refused() -> None:
    jobs = [failed(f"job-{i:05d}-{'x' * 30}", created=T0 + i) for i in range(2000)]  # distinct ids: no ranges
    data = WaitMemory.capture(watch_knowing({"": jobs}), fingerprint="f", seen_ms=T0).to_json()
    assert len(json.dumps(data)) <= MAX_MEMORY_BYTES
    back = WaitMemory.from_json(data)
    assert back.unknown and 0 < len(back.finished[""]) < 2000
    continuity = Continuity.for_trigger(back, T0)
    continuity.listed(T0 + 60_000)
    success = Decision(Verdict.SUCCESS, "all 1 job(s) finished")
    query, tolerant = JobQuery.build(job_queue="q"), Policy.build(max_failed_jobs=5000)
    refused = continuity.guard(success, query, tolerant, now_ms=T0 + 60_000)
    assert refused.verdict is Verdict.FAILURE and NOT_PROVEN in refused.message
    assert continuity.guard(success, query, Policy.build(), now_ms=T0 + 60_000) is success  # fail_fast: no flip


@pytest.mark.parametrize(
    ("query", "policy", "proven"),
    [
        (JobQuery.build(job_queue="q"), Policy.build(fail_fast=False), False),
        (JobQuery.build(job_queue="q"), Policy.build(), True),  # an earlier WAITING saw no failure
        (JobQuery.build(job_queue="q"), Policy.build(match="latest"), False),
        (JobQuery.build(job_queue="q"), Policy.build(skip_exit_codes=[3]), False),
        (JobQuery.build(job_queue="q", created_after=T0 - DAY_MS), Policy.build(fail_fast=False), True),
        (JobQuery.build(job_queue="q", created_after=T0 - 8 * DAY_MS), Policy.build(fail_fast=False), False),
        (JobQuery.build(job_ids=["a"]), Policy.build(fail_fast=False), True),  # a gone id is unknown, never a success
        (JobQuery.build(array_job_id="p"), Policy.build(fail_fast=False), True),  # counted against the parent's size
    ],
)
def test_what_an_instance_without_the_earlier_outcomes_can_prove(query: JobQuery, policy: Policy, proven: bool) -> None:
    continuity = Continuity(earlier=True, outcomes_unknown="no task_state_store", since_ms=T0, bound_ms=DAY_MS)
    continuity.listed(T0 + 60_000)
    success = Decision(Verdict.SUCCESS, "all 1 job(s) finished")
    assert (continuity.guard(success, query, policy, now_ms=T0 + 60_000) is success) is proven


def test_an_unseen_stretch_longer_than_the_retention_doubts_any_policy_and_is_handed_on() -> None:
    retention_ms = RETENTION_MIN_S * 1000
    continuity = Continuity(earlier=True, since_ms=T0)
    continuity.listed(T0 + retention_ms + 1)
    query, policy = JobQuery.build(job_queue="q"), Policy.build()
    skip = Decision(Verdict.SKIP, "1 job(s) ended with a skip exit code")
    assert continuity.guard(skip, query, policy, now_ms=T0 + retention_ms + 1).verdict is Verdict.FAILURE
    failure = Decision(Verdict.FAILURE, "1 of 1 AWS Batch job(s) failed")
    assert continuity.guard(failure, query, policy, now_ms=T0 + retention_ms + 1) is failure  # forgetting adds none
    handed_on = WaitMemory.capture(watch_knowing({}), fingerprint="f", continuity=continuity).to_json()
    later = Continuity.for_trigger(WaitMemory.from_json(handed_on), T0)
    later.listed(T0 + retention_ms + 60_000)
    assert later.doubt(query, policy, now_ms=T0 + retention_ms + 60_000)  # what was missed then stays missed
    within = Continuity(earlier=True, since_ms=T0, bound_ms=7 * DAY_MS)  # a sensor's timeout bounds the stretch
    within.listed(T0 + 30 * DAY_MS)
    assert within.doubt(query, policy, now_ms=T0 + 30 * DAY_MS) is None
