"""The trigger's event is compact (it is stored in Airflow's metadata database and logged whole, on one line): jobs the
worker can read back are named by their id, and the worker rebuilds exactly the event the verdict would have handed
on (records, message, links, log sources). Before, the event held every record (about 0.9 KiB each, up to 1,000:
1-2 MB) and each failed job's description twice."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook, DescribeResult
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.policy import ONE_OF_JOB_IDS, Policy, describe_job, judge
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing.deferral import run_deferred
from airflow_batch_jobs.verdict_event import compact_event, resolve_event, verdict_event
from airflow_batch_jobs.watch import AGED_OUT, REMEMBERED, JobWatch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_batch_jobs.policy import Decision
    from airflow_batch_jobs.testing import BatchEmulator

DETAILS = ("summary", "full", "none")
LOGGED = {"logDriver": "awslogs", "options": {"awslogs-group": "/custom/etl", "awslogs-region": "eu-west-1"}}
SECRET = "s3cr3t-value-in-the-environment"


def register_logged_definition(emu: BatchEmulator) -> None:
    emu.client().register_job_definition(
        jobDefinitionName="logged",
        type="container",
        containerProperties={
            "image": "busybox",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}],
            "logConfiguration": LOGGED,
            "environment": [{"name": "TOKEN", "value": SECRET}],
        },
    )


def decided(emu: BatchEmulator, policy: Policy, **query: Any) -> Decision:
    """A verdict on the emulator's jobs as they are now, by the blocking path (the trigger's judges alike)."""
    decision = JobWatch(JobQuery.build(**query), policy).poll(BatchJobsHook())
    assert decision.verdict.value != "waiting", decision.message
    return decision


def failure_with_logs(emu: BatchEmulator) -> Decision:
    register_logged_definition(emu)
    emu.add_outcome({"attempts": [{"exit_code": 2, "reason": "AccessDenied: s3://reports"}]}, name="etl-publish")
    for name in ("etl-extract", "etl-transform", "etl-load", "etl-publish"):
        emu.submit(name, definition="logged")
    emu.advance(600)
    return decided(emu, Policy.build(min_jobs=4), job_queue="queue", job_name="etl-*")


def success_of_many(emu: BatchEmulator) -> Decision:
    for i in range(150):
        emu.submit(f"etl-{i:03d}")
    emu.advance(600)
    return decided(emu, Policy.build(min_jobs=150), job_queue="queue")


def skip(emu: BatchEmulator) -> Decision:
    emu.add_outcome({"attempts": [{"exit_code": 3}]}, name="ingest")
    emu.submit("ingest")
    emu.submit("other")
    emu.advance(600)
    return decided(emu, Policy.build(skip_exit_codes=[3]), job_queue="queue")


def array_children(emu: BatchEmulator) -> Decision:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="fan", indices=[4, 9])
    parent = emu.submit("fan", arrayProperties={"size": 12})
    emu.advance(600)
    return decided(emu, Policy.build(max_failed_jobs=2), array_job_id=parent)


def fail_fast_while_others_run(emu: BatchEmulator) -> Decision:
    emu.add_outcome({"attempts": [{"exit_code": 1, "duration": 10}]}, name="bad")
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 3600}]}, name="long-*")
    emu.submit("bad")
    for i in range(3):
        emu.submit(f"long-{i}")
    emu.advance(120)
    return decided(emu, Policy.build(), job_queue="queue")


SCENARIOS: dict[str, Callable[[BatchEmulator], Decision]] = {
    "failure with log configuration": failure_with_logs,
    "success of 150 jobs": success_of_many,
    "skip": skip,
    "array children": array_children,
    "fail_fast while others run": fail_fast_while_others_run,
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("xcom_max_jobs", [1000, 2])
def test_the_worker_rebuilds_the_event_the_verdict_would_have_handed_on(
    emu: BatchEmulator, scenario: str, xcom_max_jobs: int
) -> None:
    decision = SCENARIOS[scenario](emu)
    for xcom_detail in DETAILS:
        compact = compact_event(decision, xcom_detail, xcom_max_jobs)
        assert json.loads(json.dumps(compact)) == compact  # JSON-native: Airflow stores it as JSON
        rebuilt = resolve_event(compact, BatchJobsHook(), xcom_detail)
        assert rebuilt == verdict_event(decision, xcom_detail, xcom_max_jobs), (scenario, xcom_detail)


def test_the_event_line_holds_no_failed_job_s_description_nor_its_secrets(emu: BatchEmulator) -> None:
    decision = failure_with_logs(emu)
    (bad,) = decision.failed
    event = compact_event(decision, "full", 1000)
    line = json.dumps(event)
    assert describe_job(bad) in decision.message  # the message does describe the failed job...
    for said_in_the_description in (describe_job(bad), "AccessDenied: s3://reports", bad.log_stream, "/custom/etl"):
        assert said_in_the_description not in line  # ...the event line only names it, once
    assert line.count(bad.job_id) == 4  # its record, its place in the message, its link, its log source
    assert "failed (tolerated: 0)" in line  # the verdict's own line stays readable
    assert SECRET not in line
    full = json.dumps(verdict_event(decision, "full", 1000))
    assert len(line) * 10 < len(full)


def test_the_event_grows_by_an_id_per_record_and_array_children_by_runs(emu: BatchEmulator) -> None:
    decision = success_of_many(emu)
    event = json.dumps(compact_event(decision, "full", 1000))
    assert len(event) < 150 * 45 + 300, len(event)
    parent = emu.submit("fan", arrayProperties={"size": 500})
    emu.advance(600)
    children = decided(emu, Policy.build(), array_job_id=parent)
    packed = compact_event(children, "summary", 1000)
    assert packed["records"] in ([[parent, 0, 499]], [[parent, 499, 0]])  # one run, in the listing's order
    assert len(resolve_event(packed, BatchJobsHook(), "summary")["records"]) == 500


def test_jobs_still_active_travel_with_what_they_share_said_once(emu: BatchEmulator) -> None:
    """A fail_fast verdict while others run: their records are the summaries the verdict saw (the worker would read
    back later states), carried without repeating their status, definition or ARN prefix."""
    decision = fail_fast_while_others_run(emu)
    event = compact_event(decision, "summary", 1000)
    carried = [entry for entry in event["records"] if isinstance(entry, dict)]
    assert len(carried) == 3 and event["shared"]["status"] == "RUNNING"
    assert all(set(entry) <= {"jobId", "jobName", "createdAt", "startedAt"} for entry in carried), carried
    assert event["arn_prefix"].endswith(":job/")
    rebuilt = resolve_event(event, BatchJobsHook(), "summary")["records"]
    assert [r["status"] for r in rebuilt] == ["FAILED", "RUNNING", "RUNNING", "RUNNING"]
    assert all(r["job_arn"] == f"{event['arn_prefix']}{r['job_id']}" for r in rebuilt)


class ReadBack:
    """DescribeJobs as the worker gets it: the given details, in the order asked; every call recorded."""

    def __init__(self, details: Iterable[dict[str, Any]]) -> None:
        self.details = {detail["jobId"]: detail for detail in details}
        self.calls: list[list[str]] = []

    def describe_jobs(self, job_ids: list[str]) -> DescribeResult:
        self.calls.append(list(job_ids))
        return DescribeResult(
            jobs=[self.details[i] for i in job_ids if i in self.details],
            missing=[i for i in job_ids if i not in self.details],
        )


def detail(job_id: str, status: str = "FAILED", code: int = 1) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "jobName": f"job-{job_id}",
        "jobArn": f"arn:aws:batch:us-east-1:123456789012:job/{job_id}",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
        "status": status,
        "createdAt": 1,
        "statusReason": "Essential container in task exited",
        "attempts": [{"container": {"exitCode": code, "logStreamName": f"d/default/{job_id}"}, "stoppedAt": 5}],
        "container": {"exitCode": code, "environment": [{"name": "TOKEN", "value": SECRET}]},
    }


def test_jobs_the_worker_cannot_read_back_travel_as_they_were() -> None:
    """A stand-in for aged-out array children, a job remembered from an earlier poll and a summary of a job still
    active are carried in the event (redacted); only described finished jobs are named."""
    described = [detail("a"), detail("b", "SUCCEEDED", 0)]
    remembered = {"jobId": "r", "jobName": "old", "status": "FAILED", REMEMBERED: True, "container": {"exitCode": 3}}
    stand_in = {"jobId": "p:aged-out-failed-1", ONE_OF_JOB_IDS: ["p:3", "p:7"], AGED_OUT: True, "status": "FAILED"}
    running = {"jobId": "c", "jobName": "run", "status": "RUNNING", "container": {"environment": [{"value": SECRET}]}}
    views = [JobView(job) for job in (*described, remembered, stand_in, running)]
    decision = judge(views, Policy.build(), now_ms=10)
    assert decision.verdict.value == "failure" and len(decision.failed) == 3
    event = compact_event(decision, "full", 1000)
    named = [entry for entry in event["records"] if isinstance(entry, str)]
    assert named == ["a", "b"] and SECRET not in json.dumps(event)
    assert sum(isinstance(part, dict) for part in event["message"]) == 1  # only a's description is rebuilt
    read_back = ReadBack(described)
    rebuilt = resolve_event(event, read_back, "full")  # type: ignore[arg-type]
    assert rebuilt == json.loads(json.dumps(verdict_event(decision, "full", 1000)).replace(SECRET, "***"))
    assert read_back.calls == [["a", "b"]]  # one DescribeJobs for every job the event names


def test_a_failed_read_back_is_tried_again_as_a_poll_is_then_fails_the_wait(
    emu: BatchEmulator, context: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict stands: a fault while reading back its jobs delays it (tried again, up to max_poll_errors times),
    or fails the wait as that many failed polls do; it never turns into another verdict."""
    pauses: list[float] = []
    monkeypatch.setattr("airflow_batch_jobs.arguments.time.sleep", pauses.append)
    decision = failure_with_logs(emu)
    event = compact_event(decision, "summary", 1000)
    once_only = {"botocore_config": {"retries": {"mode": "standard", "total_max_attempts": 1}}}
    emu.inject("DescribeJobs", "throttle", count=2)
    with pytest.raises(AirflowFailException, match="1 of 4 AWS Batch job"):  # the verdict, on the third read
        BatchJobsSensor(task_id="s", job_queue="queue", max_poll_errors=3, **once_only).execute_complete(context, event)
    assert pauses == [1.0, 2.0] and len(context["ti"].pushed["return_value"]) == 4
    emu.clear_faults()
    emu.inject("DescribeJobs", "throttle")
    with pytest.raises(AirflowFailException, match=r"verdict is in \(failure\).*2 reads in a row failed"):
        BatchJobsSensor(task_id="s", job_queue="queue", max_poll_errors=2, **once_only).execute_complete(context, event)
    emu.clear_faults()
    event["records"][0] = "no-such-job"
    with pytest.raises(AirflowFailException, match="AWS Batch no longer knows 1 job"):
        BatchJobsSensor(task_id="s", job_queue="queue", max_poll_errors=2).execute_complete(context, event)
    emu.inject("DescribeJobs", "denied")  # a request AWS Batch rejects is not tried again
    pauses.clear()
    with pytest.raises(AirflowFailException, match="AWS Batch rejected the request"):
        BatchJobsSensor(task_id="s", job_queue="queue", max_poll_errors=5).execute_complete(context, event)
    assert pauses == []


class PushedTo:
    """A task instance that keeps what is pushed to XCom."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_a_deferred_sensor_hands_on_what_a_poking_one_does(emu: BatchEmulator) -> None:
    register_logged_definition(emu)
    emu.add_outcome({"attempts": [{"exit_code": 2, "duration": 200}]}, name="etl-bad")
    for name in ("etl-a", "etl-bad", "etl-b"):
        emu.submit(name, definition="logged")
    outcomes = []
    for deferrable in (True, False):
        ti = PushedTo()
        pushed = ti.pushed
        sensor = BatchJobsSensor(task_id="s", job_queue="queue", deferrable=deferrable, poke_interval=30, min_jobs=3)
        with pytest.raises(AirflowFailException) as failure:
            if deferrable:
                run_deferred(sensor, emu, {"ti": ti})
            else:
                while not sensor.poke({"ti": ti}):
                    emu.advance(30)
        outcomes.append((str(failure.value), pushed))
    (deferred_message, deferred_pushed), (poked_message, poked_pushed) = outcomes
    assert deferred_message == poked_message and "etl-bad" in deferred_message
    assert deferred_pushed == poked_pushed and len(deferred_pushed["return_value"]) == 3


def test_an_event_of_an_earlier_version_is_read_as_it_is(emu: BatchEmulator, context: dict) -> None:
    """A trigger that fired before an upgrade left a full event: the resumed task reads it as before."""
    decision = failure_with_logs(emu)
    full = verdict_event(decision, "summary", 1000)
    with pytest.raises(AirflowFailException, match="etl-publish"):
        BatchJobsSensor(task_id="s", job_queue="queue").execute_complete(context, full)
    assert context["ti"].pushed["return_value"] == full["records"]
