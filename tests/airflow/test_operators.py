from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, AirflowSkipException

from airflow_batch_jobs.operators.batch_jobs import (
    BatchCheckJobsOperator,
    BatchDescribeJobsOperator,
    BatchListJobsOperator,
    ids_from,
)
from airflow_batch_jobs.query import InvalidQueryError
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing.deferral import run_deferred
from airflow_batch_jobs.watch import JobWatch

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator


def test_list_statuses_latest_then_describe_records(emu: BatchEmulator, context: dict) -> None:
    ids = []
    for i in range(5):
        ids.append(emu.submit(f"job-{i}"))
        emu.advance(1)
    emu.advance(60)
    emu.submit("still-running")
    listed = BatchListJobsOperator(task_id="l", job_queue="queue", job_status=["SUCCEEDED"], latest=3).execute(context)
    assert [r["job_id"] for r in listed] == ids[::-1][:3]  # newest first, finished only
    described = BatchDescribeJobsOperator(task_id="d", job_ids=listed, xcom_detail="full").execute(context)
    assert [r["job_id"] for r in described] == [r["job_id"] for r in listed]
    assert described[0]["detail"]["jobQueue"].endswith("job-queue/queue")


def test_describe_reports_missing_ids_and_checks_policy(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="bad")
    bad = emu.submit("bad")
    emu.advance(60)
    with pytest.raises(AirflowFailException, match="unknown to AWS Batch: nope"):
        BatchDescribeJobsOperator(task_id="d", job_ids=[bad, "nope"], fail_on_missing=True).execute(context)
    with pytest.raises(AirflowFailException, match=f"bad \\({bad}\\): FAILED"):
        BatchDescribeJobsOperator(task_id="d", job_ids=[bad], check=True).execute(context)


def test_check_operator_active_skip_and_success(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 3}]}, name="nodata")
    emu.submit("nodata")
    with pytest.raises(AirflowFailException, match="Not decided yet"):
        BatchCheckJobsOperator(task_id="c", job_queue="queue").execute(context)
    with pytest.raises(AirflowSkipException, match="Not decided yet"):
        BatchCheckJobsOperator(task_id="c", job_queue="queue", if_active="skip").execute(context)
    emu.advance(60)
    with pytest.raises(AirflowSkipException, match="skip exit code"):
        BatchCheckJobsOperator(task_id="c", job_queue="queue", skip_exit_codes=[3]).execute(context)
    result = BatchCheckJobsOperator(task_id="c", job_queue="queue", success_exit_codes=[3]).execute(context)
    assert result[0]["final_exit_code"] == 3


def test_ids_from_accepts_ids_records_and_rendered_strings() -> None:
    assert ids_from(["a", "b", "a"]) == ["a", "b"]
    assert ids_from([{"job_id": "a"}, {"jobId": "b"}]) == ["a", "b"]
    assert ids_from("['a', 'b']") == ["a", "b"]
    assert ids_from("a") == ["a"]
    with pytest.raises(InvalidQueryError, match="job_ids contains 5"):
        ids_from([5])


def test_bad_operator_arguments_at_parse_time() -> None:
    with pytest.raises(InvalidQueryError, match="job_status contains \\['DONE'\\]"):
        BatchListJobsOperator(task_id="l", job_queue="q", job_status=["DONE"])
    with pytest.raises(ValueError, match="if_active='wait'"):
        BatchCheckJobsOperator(task_id="c", job_queue="q", if_active="wait")
    with pytest.raises(ValueError, match="latest=0"):
        BatchListJobsOperator(task_id="l", job_queue="q", latest=0)


def test_describe_accepts_job_arns(emu: BatchEmulator, context: dict) -> None:
    job = emu.submit("by-arn")
    emu.advance(60)
    arn = f"arn:aws:batch:us-east-1:123456789012:job/{job}"
    described = BatchDescribeJobsOperator(task_id="d", job_ids=[arn], fail_on_missing=True).execute(context)
    assert [r["job_id"] for r in described] == [job]
    assert ids_from([arn, job, {"job_id": arn}]) == [job]


def test_ids_from_rejects_arns_of_other_resources() -> None:
    queue_arn = "arn:aws:batch:us-east-1:123456789012:job-queue/nightly"
    with pytest.raises(InvalidQueryError, match=r"job_ids contains 'arn:.*job-queue/nightly': not a job ARN"):
        ids_from([queue_arn])


def test_check_operator_does_not_blame_aws_for_a_bug_in_our_code(emu: BatchEmulator, context: dict) -> None:
    with mock.patch.object(JobWatch, "poll", side_effect=KeyError("jobId")), pytest.raises(KeyError):
        BatchCheckJobsOperator(task_id="c", job_queue="queue").execute(context)


# -- #15: the operators, records and links tell the truth and stay bounded -----------------------------------------
OPERATORS = (BatchListJobsOperator, BatchDescribeJobsOperator, BatchCheckJobsOperator, BatchJobsSensor)


def older_failed_newer_succeeded(emu: BatchEmulator) -> tuple[str, str]:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="nightly-old")
    old = emu.submit("nightly-old")
    emu.advance(5)
    new = emu.submit("nightly-new")
    emu.advance(120)
    return old, new


def test_match_latest_judges_only_the_newest_in_every_class(emu: BatchEmulator, context: dict) -> None:
    """An older FAILED job and a newer SUCCEEDED one: 'latest' means the newer one, whichever class judges."""
    old, new = older_failed_newer_succeeded(emu)
    described = BatchDescribeJobsOperator(task_id="d", job_ids=[old, new], check=True, match="latest")
    assert [r["job_id"] for r in described.execute(context)] == [new]
    checked = BatchCheckJobsOperator(task_id="c", job_ids=[old, new], match="latest").execute(context)
    assert [r["job_id"] for r in checked] == [new]
    sensed = BatchJobsSensor(task_id="s", job_ids=[old, new], match="latest").poke(context)
    assert [r["job_id"] for r in sensed.xcom_value] == [new]
    with pytest.raises(AirflowFailException, match=f"nightly-old \\({old}\\)"):  # 'all' still sees the old one
        BatchDescribeJobsOperator(task_id="d", job_ids=[old, new], check=True).execute(context)


@pytest.mark.parametrize("nothing", [[], "", "[]"])
def test_describe_check_of_no_ids_waits_for_min_jobs(emu: BatchEmulator, context: dict, nothing: Any) -> None:
    """An upstream that found nothing is not a success when min_jobs asks for a job."""
    with pytest.raises(AirflowFailException, match=r"0 of at least 1 job\(s\) found"):
        BatchDescribeJobsOperator(task_id="d", job_ids=nothing, check=True).execute(context)
    assert BatchDescribeJobsOperator(task_id="d", job_ids=nothing, check=True, min_jobs=0).execute(context) == []
    assert BatchDescribeJobsOperator(task_id="d", job_ids=nothing).execute(context) == []  # no check: no verdict
    assert emu.calls == {}


def stopped_while_waiting_for_retry(emu: BatchEmulator, how: str) -> str:
    """A job whose first attempt exited 3, stopped (CancelJob / TerminateJob) while RUNNABLE for its retry."""
    emu.add_outcome({"attempts": [{"exit_code": 3, "duration": 10}, {"exit_code": 0}]}, name="retried")
    job = emu.submit("retried", retryStrategy={"attempts": 2})
    client = emu.client()
    for _ in range(120):
        (detail,) = client.describe_jobs(jobs=[job])["jobs"]
        if detail["status"] == "RUNNABLE" and detail.get("attempts"):
            break
        emu.advance(1)
    stop = client.cancel_job if how == "cancel" else client.terminate_job
    stop(jobId=job, reason=f"{how} by operator")
    emu.advance(60)
    (detail,) = client.describe_jobs(jobs=[job])["jobs"]
    assert detail["status"] == "FAILED" and detail["container"]["exitCode"] == 3  # the earlier attempt's code
    emu.reset_counters()
    return job


@pytest.mark.parametrize("how", ["cancel", "terminate"])
@pytest.mark.parametrize("codes", ["success_exit_codes", "skip_exit_codes"])
def test_a_job_stopped_while_waiting_for_its_retry_is_a_failure_in_every_operator(
    emu: BatchEmulator, context: dict, how: str, codes: str
) -> None:
    """The exit code is attempt 1's; the job ended by the stop. Neither a success nor a skip."""
    job = stopped_while_waiting_for_retry(emu, how)
    policy = {codes: [3]}
    for task in (
        BatchCheckJobsOperator(task_id="c", job_queue="queue", **policy),
        BatchCheckJobsOperator(task_id="c", job_ids=[job], **policy),
        BatchDescribeJobsOperator(task_id="d", job_ids=[job], check=True, **policy),
    ):
        with pytest.raises(AirflowFailException, match=f"{how} by operator"):
            task.execute(context)


def test_summary_records_claim_only_what_a_summary_says(emu: BatchEmulator, context: dict) -> None:
    """A job that ran twice (137, then 0): its ListJobs summary says how the job ended, not its attempts, log stream
    or queue. Described, the record has them all."""
    emu.add_outcome({"attempts": [{"exit_code": 137, "reason": "OOM"}, {"exit_code": 0}]}, name="retried")
    emu.submit("retried", retryStrategy={"attempts": 2})
    emu.advance(300)
    (listed,) = BatchListJobsOperator(task_id="l", job_queue="queue").execute(context)
    assert listed["described"] is False and listed["status"] == "SUCCEEDED" and listed["final_exit_code"] == 0
    for lacking in ("attempts", "log_stream", "job_queue"):
        assert lacking not in listed, lacking
    (described,) = BatchDescribeJobsOperator(task_id="d", job_ids=[listed]).execute(context)
    assert described["described"] is True and described["job_queue"].endswith("job-queue/queue")
    assert [(a["index"], a["exit_code"]) for a in described["attempts"]] == [(0, 137), (1, 0)]
    assert described["log_stream"] == described["attempts"][1]["log_stream"] is not None
    assert described["attempts"][1]["started_at"] > described["attempts"][0]["stopped_at"]


def register_logged_definition(emu: BatchEmulator, name: str, log_configuration: dict[str, Any]) -> None:
    emu.client().register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}],
            "logConfiguration": log_configuration,
        },
    )


@pytest.mark.parametrize("xcom_detail", ["summary", "full", "none"])
def test_links_follow_the_job_s_log_configuration_whatever_the_xcom_detail(
    emu: BatchEmulator, context: dict, xcom_detail: str
) -> None:
    custom = {"awslogs-group": "/custom/etl", "awslogs-region": "eu-west-1"}
    register_logged_definition(emu, "logged", {"logDriver": "awslogs", "options": custom})
    emu.add_outcome({"attempts": [{"exit_code": 2}]}, name="etl-bad")
    job = emu.submit("etl-bad", definition="logged")
    emu.advance(120)
    with pytest.raises(AirflowFailException, match="etl-bad"):
        BatchCheckJobsOperator(task_id="c", job_queue="queue", xcom_detail=xcom_detail).execute(context)
    pushed = context["ti"].pushed
    assert ("return_value" in pushed) is (xcom_detail != "none")
    assert pushed["batch_job_details"]["job_id"] == job
    assert pushed["batch_job_queue"]["job_queue_arn"].endswith("job-queue/queue")
    log = pushed["cloudwatch_events"]
    assert (log["awslogs_group"], log["awslogs_region"]) == ("/custom/etl", "eu-west-1")
    assert log["awslogs_stream_name"].startswith("logged/default/")


def test_cloudwatch_link_defaults_and_other_log_drivers(emu: BatchEmulator, context: dict) -> None:
    """Without options: /aws/batch/job in the job's own region (its ARN's). Another log driver: no CloudWatch link."""
    register_logged_definition(emu, "splunked", {"logDriver": "splunk", "options": {"splunk-url": "https://s"}})
    emu.add_outcome({"attempts": [{"exit_code": 2}]}, name="etl-bad")
    plain = emu.submit("etl-bad")
    emu.advance(120)
    with pytest.raises(AirflowFailException):
        BatchCheckJobsOperator(task_id="c", job_ids=[plain], xcom_detail="none", region_name="us-west-2").execute(
            context
        )
    log = context["ti"].pushed["cloudwatch_events"]
    assert (log["awslogs_group"], log["awslogs_region"]) == ("/aws/batch/job", "us-east-1")
    context["ti"].pushed.clear()
    splunked = emu.submit("etl-bad", definition="splunked")
    emu.advance(120)
    with pytest.raises(AirflowFailException):
        BatchCheckJobsOperator(task_id="c", job_ids=[splunked]).execute(context)
    assert context["ti"].pushed["batch_job_details"]["job_id"] == splunked
    assert "cloudwatch_events" not in context["ti"].pushed


def test_every_class_bounds_xcom_alike_and_logs_the_cut(
    emu: BatchEmulator, context: dict, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = {inspect.signature(cls.__init__).parameters["xcom_max_jobs"].default for cls in OPERATORS}
    assert defaults == {1000}
    ids = [emu.submit(f"many-{i}") for i in range(5)]
    emu.advance(120)
    for task in (
        BatchListJobsOperator(task_id="l", job_queue="queue", xcom_max_jobs=2),
        BatchDescribeJobsOperator(task_id="d", job_ids=ids, xcom_max_jobs=2),
        BatchDescribeJobsOperator(task_id="d", job_ids=ids, check=True, xcom_max_jobs=2),
        BatchCheckJobsOperator(task_id="c", job_queue="queue", xcom_max_jobs=2),
    ):
        caplog.clear()
        capsys.readouterr()
        with caplog.at_level(logging.WARNING):
            assert len(task.execute(context)) == 2, task
        logged = caplog.text + capsys.readouterr().out  # the task logger is structlog's: it prints
        assert "XCom holds 2 job records; 3 more were left out (xcom_max_jobs)" in logged, task
    listed = BatchListJobsOperator(task_id="l", job_queue="queue", xcom_max_jobs=2).execute(context)
    assert [r["job_id"] for r in listed] == ids[::-1][:2]  # the newest kept


def test_xcom_detail_none_pushes_nothing(emu: BatchEmulator, context: dict) -> None:
    job = emu.submit("quiet")
    emu.advance(120)
    for task in (
        BatchListJobsOperator(task_id="l", job_queue="queue", xcom_detail="none"),
        BatchDescribeJobsOperator(task_id="d", job_ids=[job], xcom_detail="none"),
        BatchDescribeJobsOperator(task_id="d", job_ids=[job], check=True, xcom_detail="none"),
        BatchCheckJobsOperator(task_id="c", job_queue="queue", xcom_detail="none"),
    ):
        assert task.execute(context) is None, task  # Airflow pushes a return_value row for anything else
    assert "return_value" not in context["ti"].pushed


def test_list_operator_lists_a_created_at_window_incrementally(emu: BatchEmulator, context: dict) -> None:
    """A queue with history: the window's jobs are on the first page of a newest-first listing."""
    for i in range(1000):
        emu.submit(f"old-{i}")
    emu.advance(7200)
    window_starts = emu.now_ms()
    today = [emu.submit(f"today-{i}") for i in range(20)]
    emu.advance(120)
    emu.reset_counters()
    listed = BatchListJobsOperator(task_id="l", job_queue="queue", created_after=window_starts).execute(context)
    assert [r["job_id"] for r in listed] == today[::-1]
    assert emu.calls["ListJobs"] <= 2  # 11 pages when the whole history was read
    emu.reset_counters()
    BatchCheckJobsOperator(task_id="c", job_queue="queue", created_after=window_starts).execute(context)
    assert emu.calls["ListJobs"] <= 2


PLAIN_BAD = [
    ({"array_job_id": "a"}, "got job_queue, array_job_id"),
    ({"job_name": "a*b"}, "job_name='a*b'"),
    ({"created_after": "last tuesday"}, "created_after='last tuesday' is not a date"),
    ({"created_before": "20261121"}, "created_before='20261121' looks like a date"),
    ({"job_definition": "jd\n"}, "job_definition="),
]


@pytest.mark.parametrize("cls", OPERATORS[:1] + OPERATORS[2:])
@pytest.mark.parametrize(("bad", "needle"), PLAIN_BAD)
def test_plain_values_are_checked_at_parse_time_beside_a_templated_one(
    cls: type, bad: dict[str, Any], needle: str
) -> None:
    templated = "job_definition" if "job_name" in bad else "job_name"
    with pytest.raises(ValueError) as err:
        cls(task_id="t", job_queue="q", **{templated: "{{ params.value }}"}, **bad)
    assert needle in str(err.value)


def test_a_templated_selector_still_counts_as_one_at_parse_time() -> None:
    with pytest.raises(ValueError, match="got job_queue, job_ids"):
        BatchCheckJobsOperator(task_id="c", job_queue="q", job_ids="{{ ti.xcom_pull('list') }}")
    BatchCheckJobsOperator(task_id="c", job_queue="{{ params.queue }}", created_after="2026-11-21T00:00:00Z")


def test_job_status_rendered_from_a_list_param(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="bad")
    done, bad = emu.submit("done"), emu.submit("bad")
    emu.advance(120)
    emu.submit("running")
    task = BatchListJobsOperator(task_id="l", job_queue="queue", job_status="{{ params.statuses }}")
    task.job_status = "['SUCCEEDED', 'FAILED']"  # how Airflow renders a list param into a string field
    assert {r["job_id"] for r in task.execute(context)} == {done, bad}
    task.job_status = "['SUCCEEDED', 'DONE']"
    with pytest.raises(InvalidQueryError, match=r"job_status contains \['DONE'\]"):
        task.execute(context)


def test_every_operator_fails_without_retry_on_a_request_the_service_rejects(emu: BatchEmulator, context: dict) -> None:
    """As the sensor does: a retry would be rejected again. Throttling stays retryable (Airflow's retries)."""
    for task in (
        BatchCheckJobsOperator(task_id="c", job_queue="nope"),
        BatchListJobsOperator(task_id="l", job_queue="nope"),
    ):
        with pytest.raises(AirflowFailException, match=r"AWS Batch rejected the request.*nope"):
            task.execute(context)
    emu.inject("DescribeJobs", "denied")
    with pytest.raises(AirflowFailException, match=r"AWS Batch rejected the request.*AccessDenied"):
        BatchDescribeJobsOperator(task_id="d", job_ids=["some-id"]).execute(context)
    emu.clear_faults()
    emu.inject("*", "throttle")
    quick = {"botocore_config": {"retries": {"mode": "standard", "total_max_attempts": 1}}}
    for task in (
        BatchCheckJobsOperator(task_id="c", job_queue="queue", **quick),
        BatchListJobsOperator(task_id="l", job_queue="queue", **quick),
        BatchDescribeJobsOperator(task_id="d", job_ids=["some-id"], **quick),
    ):
        with pytest.raises(AirflowException) as err:
            task.execute(context)
        assert not isinstance(err.value, AirflowFailException), task


def test_a_deferred_sensor_s_links_come_with_its_verdict_not_its_records(emu: BatchEmulator, context: dict) -> None:
    """xcom_detail='none': the trigger's event carries no records, and the links are still set from its verdict."""
    register_logged_definition(emu, "logged", {"logDriver": "awslogs", "options": {"awslogs-group": "/custom/etl"}})
    emu.add_outcome({"attempts": [{"exit_code": 2, "duration": 120}]}, name="etl-bad")
    job = emu.submit("etl-bad", definition="logged")
    sensor = BatchJobsSensor(task_id="s", job_queue="queue", deferrable=True, xcom_detail="none", poke_interval=30)
    with pytest.raises(AirflowFailException, match="etl-bad"):
        run_deferred(sensor, emu, context)
    pushed = context["ti"].pushed
    assert "return_value" not in pushed
    assert pushed["batch_job_details"]["job_id"] == job
    assert (pushed["cloudwatch_events"]["awslogs_group"], pushed["cloudwatch_events"]["awslogs_region"]) == (
        "/custom/etl",
        "us-east-1",
    )
