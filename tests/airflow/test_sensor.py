from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, TaskDeferred
from botocore.exceptions import ClientError, EndpointConnectionError, MissingParametersError, ParamValidationError

from airflow_batch_jobs.query import InvalidQueryError
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.watch import JobWatch, is_transient, rejected_request

from .conftest import past_visibility_lag, poke_until_done

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

EMULATOR_PROFILE = "realistic"  # the service's awkward behaviours on (tests/airflow/conftest.py)
OOM = "OutOfMemoryError: Container killed due to memory usage"


def sensor(**kwargs: Any) -> BatchJobsSensor:
    kwargs.setdefault("job_queue", "queue")
    return BatchJobsSensor(task_id="wait", poke_interval=5, **kwargs)


def test_success_returns_a_record_per_job(emu: BatchEmulator, context: dict) -> None:
    ids = [emu.submit(f"etl-{i}") for i in range(3)]
    emu.submit("other")
    result, pokes = poke_until_done(sensor(job_name="ETL-*"), context, emu)
    assert pokes > 1
    assert sorted(r["job_id"] for r in result.xcom_value) == sorted(ids)
    record = result.xcom_value[0]
    assert record["status"] == "SUCCEEDED" and record["final_exit_code"] == 0
    assert record["attempts"][0]["log_stream"].startswith("jobdef/default/")
    json.dumps(result.xcom_value)


def test_failure_message_names_job_attempts_exit_codes_and_log(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome(
        {"attempts": [{"exit_code": 137, "reason": OOM}, {"exit_code": 1, "reason": "boom"}]}, name="etl-load"
    )
    emu.submit("etl-extract")
    job = emu.submit("etl-load", retryStrategy={"attempts": 2})
    with pytest.raises(AirflowFailException) as err:
        poke_until_done(sensor(job_name="etl-*"), context, emu)
    message = str(err.value)
    assert "1 of 2 AWS Batch job(s) failed" in message
    assert f"etl-load ({job}): FAILED" in message
    assert "attempt 1: exit code 137" in message and OOM in message
    assert "attempt 2: exit code 1" in message and "'boom'" in message
    assert "log jobdef/default/" in message
    assert next(r["job_id"] for r in context["ti"].pushed["return_value"]) == job  # failed first


def test_skip_and_success_exit_codes(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 3}]}, name="nodata")
    emu.add_outcome({"attempts": [{"exit_code": 4}]}, name="partial")
    emu.submit("nodata")
    emu.submit("partial")
    with pytest.raises(AirflowSkipException, match="exit code 3"):
        poke_until_done(sensor(skip_exit_codes=[3], success_exit_codes=[4]), context, emu)
    result, _ = poke_until_done(sensor(job_name="partial", success_exit_codes=[4]), context, emu)
    assert result.xcom_value[0]["status"] == "FAILED" and result.xcom_value[0]["final_exit_code"] == 4


def test_latest_vs_all(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="nightly", definition="jobdef")
    emu.submit("nightly")  # fails
    emu.advance(60)
    emu.setup(definitions=("fixed",))
    newest = emu.submit("nightly", definition="fixed")  # succeeds
    past_visibility_lag(emu)  # until then no listing shows it, and the newest the service shows is the failed one
    result, _ = poke_until_done(sensor(job_name="nightly", match="latest"), context, emu)
    assert [r["job_id"] for r in result.xcom_value] == [newest]
    with pytest.raises(AirflowFailException):
        poke_until_done(sensor(job_name="nightly", match="all"), context, emu)


def test_min_jobs_waits_for_jobs_that_appear_later(emu: BatchEmulator, context: dict) -> None:
    s = sensor(job_name="part-*", min_jobs=3)
    emu.submit("part-0")
    emu.advance(60)
    assert not s.poke(context)  # one finished job, but three are expected
    emu.submit("part-1")
    emu.submit("part-2")
    result, _ = poke_until_done(s, context, emu)
    assert len(result.xcom_value) == 3


def test_array_children_with_tolerance(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 2, "reason": "bad row"}]}, name="fan", indices=[3, 7])
    parent = emu.submit("fan", arrayProperties={"size": 10})
    result, _ = poke_until_done(sensor(job_name="fan", include_array_children=True, max_failed_jobs=2), context, emu)
    assert len(result.xcom_value) == 10
    assert {r["job_id"] for r in result.xcom_value if r["status"] == "FAILED"} == {f"{parent}:3", f"{parent}:7"}
    emu.submit("fan", arrayProperties={"size": 10})
    with pytest.raises(AirflowFailException, match="2 of 10 AWS Batch job"):
        poke_until_done(
            sensor(job_name="fan", match="latest", include_array_children=True, max_failed_jobs=1), context, emu
        )


def test_fail_fast_decides_before_others_finish(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1, "duration": 1}]}, name="quick-fail")
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 3600}]}, name="slow")
    emu.submit("quick-fail")
    emu.submit("slow")
    with pytest.raises(AirflowFailException):
        poke_until_done(sensor(), context, emu, limit=10)
    waiting = sensor(fail_fast=False)
    emu.advance(30)
    assert not waiting.poke(context)  # the slow job is still running


def test_mnp_ecs_and_eks_exit_codes(emu: BatchEmulator, context: dict) -> None:
    for name, kind in (("mnp", "multinode"), ("ecsdef", "ecs"), ("eksdef", "eks")):
        emu.setup(definitions=(name,), kind=kind)  # realistic: ECS tasks with a sidecar, EKS pods an init container
    emu.add_outcome({"attempts": [{"exit_code": 5}]}, definition="e*def")
    emu.submit("mpi", definition="mnp")
    ecs = emu.submit("ecs", definition="ecsdef")
    eks = emu.submit("eks", definition="eksdef")
    with pytest.raises(AirflowFailException) as err:
        poke_until_done(sensor(fail_fast=False), context, emu)
    assert f"ecs ({ecs})" in str(err.value) and f"eks ({eks})" in str(err.value)
    codes = {r["job_name"]: r["final_exit_code"] for r in context["ti"].pushed["return_value"]}
    assert codes == {"mpi": 0, "ecs": 5, "eks": 5}


def test_runnable_timeout(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"stuck_runnable": True}, name="stuck")
    emu.submit("stuck")
    s = sensor(runnable_timeout=600)
    s.watch.clock = emu.now_ms
    with pytest.raises(AirflowFailException) as err:
        poke_until_done(s, context, emu, step=60)
    assert "RUNNABLE for more than 600 s" in str(err.value) and "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY" in str(
        err.value
    )


def test_calls_per_poll_are_pages_not_jobs(emu: BatchEmulator, context: dict) -> None:
    for i in range(250):
        emu.submit(f"bulk-{i}")
    past_visibility_lag(emu)
    s = sensor(job_name="bulk-*")
    s.poke(context)
    assert emu.calls == {"ListJobs": 3}  # 250 jobs in pages of 100; nothing finished, nothing described
    emu.reset_counters()
    result, _ = poke_until_done(s, context, emu)
    pokes_calls = emu.calls
    assert len(result.xcom_value) == 250
    assert pokes_calls["DescribeJobs"] == 3  # 250 finished jobs described once, 100 per call
    emu.reset_counters()
    s.poke(context)
    assert emu.calls == {"ListJobs": 3}  # already described: not again


def test_a_watch_that_will_not_live_to_the_verdict_describes_only_at_one(emu: BatchEmulator, context: dict) -> None:
    """A reschedule try, or the poke before deferring, would lose what it described: it judges on summaries."""
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 3600}]}, name="bulk-slow")
    for i in range(250):
        emu.submit(f"bulk-{i}")
    emu.submit("bulk-slow")
    emu.advance(600)
    for waiting in (sensor(job_name="bulk-*", mode="reschedule"), sensor(job_name="bulk-*", deferrable=True)):
        emu.reset_counters()
        assert not waiting.poke(context)
        assert emu.calls == {"ListJobs": 3}
    emu.reset_counters()
    assert not sensor(job_name="bulk-*").poke(context)  # a poke-mode watch keeps its details: full calls of 100
    assert emu.calls == {"ListJobs": 3, "DescribeJobs": 2}
    emu.advance(3600)
    emu.reset_counters()
    result, _ = poke_until_done(sensor(job_name="bulk-*", mode="reschedule"), context, emu)
    assert len(result.xcom_value) == 251 and emu.calls == {"ListJobs": 3, "DescribeJobs": 3}  # all at the verdict


@pytest.mark.parametrize("batch_emulator", [{"summary_lag_seconds": 0}], ids=["current-summary"], indirect=True)
def test_array_children_cost_the_listings_their_summary_asks_for(emu: BatchEmulator, context: dict) -> None:
    """What a current statusSummary saves. A summary that lags its children (the realistic profile's 5 s) is caught
    by the count and every status is listed again in that poll (README; tests/unit/test_listing.py): with children
    moving in lockstep and a poke every 5 s that is 50 ListJobs here instead of 29. Verdicts with the lag on:
    test_array_children_with_tolerance."""
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 60}]}, name="fan")
    emu.submit("fan", arrayProperties={"size": 10})
    s = sensor(job_name="fan", include_array_children=True)
    result, pokes = poke_until_done(s, context, emu)
    assert len(result.xcom_value) == 10
    # status by status this would be 1 + 7 ListJobs a poke; the summary names the statuses worth a listing
    assert emu.calls["ListJobs"] <= pokes * 3
    emu.reset_counters()
    s.poke(context)
    assert emu.calls == {"ListJobs": 1}  # every child known finished: the queue listing alone


def test_paging_stops_at_created_after_and_at_what_is_known_finished(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 3600}]}, name="today")
    for i in range(300):
        emu.submit(f"yesterday-{i}")
    emu.advance(3600)
    start = emu.now_ms()
    emu.advance(1)
    today = [emu.submit("today") for _ in range(5)]
    past_visibility_lag(emu)
    by_time = sensor(created_after=start)
    assert not by_time.poke(context)
    assert emu.calls == {"ListJobs": 1}  # the first page reaches yesterday: no 4 pages of it
    emu.reset_counters()

    everything = sensor(min_jobs=305)
    assert not everything.poke(context)
    assert emu.calls == {"ListJobs": 4, "DescribeJobs": 3}  # 305 jobs, 300 finished described in full calls
    emu.advance(600)  # today's jobs run on; yesterday's are settled
    emu.reset_counters()
    assert not everything.poke(context)
    assert emu.calls == {"ListJobs": 1}
    emu.advance(3600)
    result, _ = poke_until_done(everything, context, emu)
    assert len(result.xcom_value) == 305 and set(today) <= {r["job_id"] for r in result.xcom_value}


def test_transient_errors_give_no_verdict_then_fail_after_max(emu: BatchEmulator, context: dict) -> None:
    no_retry = {"retries": {"mode": "standard", "total_max_attempts": 1}}
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="x")
    emu.submit("x")
    emu.advance(60)
    s = sensor(botocore_config=no_retry, max_poll_errors=3)
    emu.inject("ListJobs", "throttle", count=2)
    assert not s.poke(context) and not s.poke(context)  # throttled: no verdict, not a success nor a failure
    with pytest.raises(AirflowFailException, match="1 of 1"):
        s.poke(context)
    emu.inject("*", "server", rate=1.0)
    s2 = sensor(botocore_config=no_retry, max_poll_errors=2)
    assert not s2.poke(context)
    with pytest.raises(AirflowFailException, match="2 polls in a row failed"):
        s2.poke(context)


def test_unknown_queue_fails_at_once(emu: BatchEmulator, context: dict) -> None:
    with pytest.raises(AirflowFailException, match="rejected the request"):
        sensor(job_queue="nope").poke(context)
    assert emu.calls["ListJobs"] == 1


def test_secrets_never_reach_xcom_or_logs(emu: BatchEmulator, context: dict, caplog: pytest.LogCaptureFixture) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="leaky")
    emu.submit(
        "leaky",
        parameters={"password": "PARAM-SECRET-1"},
        containerOverrides={"environment": [{"name": "TOKEN", "value": "ENV-SECRET-2"}]},
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AirflowFailException) as err:
        poke_until_done(sensor(xcom_detail="full"), context, emu)
    pushed = json.dumps(context["ti"].pushed)
    assert "TOKEN" in pushed  # names are kept, values are not
    for secret in ("PARAM-SECRET-1", "ENV-SECRET-2"):
        assert secret not in pushed and secret not in caplog.text and secret not in str(err.value)


def test_templated_values_checked_after_render_before_any_call(emu: BatchEmulator, context: dict) -> None:
    s = sensor(job_name="{{ params.name }}")  # not checked at parse time: still a template
    s.job_name = "bad*name"  # what it rendered to
    with pytest.raises(InvalidQueryError, match="job_name='bad\\*name'"):
        s.poke(context)
    assert emu.calls == {}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"job_queue": None}, "exactly one of"),
        ({"min_jobs": -1}, "min_jobs=-1"),
        ({"success_exit_codes": [0, 3], "skip_exit_codes": [3]}, "[3] are in both"),
        ({"skip_exit_codes": ["3"]}, "skip_exit_codes contains '3'"),
        ({"match": "first"}, "match='first'"),
        ({"xcom_detail": "everything"}, "xcom_detail='everything'"),
        ({"runnable_timeout": 0}, "runnable_timeout=0"),
        ({"max_poll_errors": 0}, "max_poll_errors=0"),
        ({"timeout": 0}, "timeout=0"),
    ],
)
def test_bad_arguments_fail_at_parse_time(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        sensor(**kwargs)
    assert needle in str(err.value)


def test_deferrable_gives_the_same_verdict_as_poke(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 137, "reason": OOM}]}, name="d-bad")
    emu.submit("d-ok")
    emu.submit("d-bad")
    deferring = sensor(job_name="d-*", deferrable=True, fail_fast=False)
    with pytest.raises(TaskDeferred) as deferred:
        deferring.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, BatchJobsTrigger) and deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    rebuilt = BatchJobsTrigger(**json.loads(json.dumps(kwargs)))  # what the triggerer does
    assert classpath == "airflow_batch_jobs.triggers.batch_jobs.BatchJobsTrigger"
    rebuilt.poll_interval = 0.01

    async def drive() -> dict:
        async def advance() -> None:
            while True:
                await asyncio.sleep(0.02)
                emu.advance(5)

        ticker = asyncio.create_task(advance())
        try:
            return (await anext(rebuilt.run())).payload
        finally:
            ticker.cancel()

    event = asyncio.run(drive())
    assert event["status"] == "failure"
    with pytest.raises(AirflowFailException) as deferred_err:
        deferring.execute_complete(context, event)
    with pytest.raises(AirflowFailException) as poke_err:
        poke_until_done(sensor(job_name="d-*", fail_fast=False), context, emu)
    assert str(deferred_err.value) == str(poke_err.value)


def test_deferrable_decides_without_deferring_when_already_over(emu: BatchEmulator, context: dict) -> None:
    emu.submit("done")
    emu.advance(120)
    result = sensor(job_name="done", deferrable=True).execute(context)
    assert [r["job_name"] for r in result] == ["done"]


def test_timeout_holds_under_deferral(emu: BatchEmulator, context: dict) -> None:
    from airflow.providers.common.compat.sdk import AirflowSensorTimeout

    from tests.compat.airflow_versions import timed_out_trigger

    emu.submit("slow")  # still running at the first poke: the sensor defers
    s = sensor(job_name="slow", deferrable=True, timeout=900)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(context)
    assert deferred.value.timeout is not None and 890 <= deferred.value.timeout.total_seconds() <= 900
    with pytest.raises(AirflowSensorTimeout):
        s.resume_execution(*timed_out_trigger(), context)
    soft = sensor(job_name="slow", deferrable=True, timeout=900, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        soft.resume_execution(*timed_out_trigger(), context)


def test_a_page_failing_mid_listing_gives_no_verdict_in_poke_mode(emu: BatchEmulator, context: dict) -> None:
    no_retry = {"retries": {"mode": "standard", "total_max_attempts": 1}}
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="p-bad")
    emu.submit("p-bad")
    for i in range(150):
        emu.submit(f"p-{i}")
    emu.advance(120)
    emu.inject("ListJobs", "server", skip=1, count=1)
    s = sensor(job_name="p-*", botocore_config=no_retry)
    assert s.poke(context) is False  # page 2 lost: no verdict on page 1 alone
    assert emu.calls["ListJobs"] == 2
    with pytest.raises(AirflowFailException, match="1 of 151"):
        s.poke(context)


def job_arn(job_id: str) -> str:
    return f"arn:aws:batch:us-east-1:123456789012:job/{job_id}"


def test_job_arns_are_waited_on_like_their_ids(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="by-arn")
    by_id = emu.submit("by-id")
    by_arn = emu.submit("by-arn")
    with pytest.raises(AirflowFailException, match=f"by-arn \\({by_arn}\\): FAILED"):  # not dropped as unknown
        poke_until_done(sensor(job_queue=None, job_ids=[by_id, job_arn(by_arn)]), context, emu)
    assert {r["job_id"] for r in context["ti"].pushed["return_value"]} == {by_id, by_arn}


def test_templated_job_ids_rendered_as_a_list_string(emu: BatchEmulator, context: dict) -> None:
    ids = [emu.submit("rendered-a"), emu.submit("rendered-b")]
    s = sensor(job_queue=None, job_ids="{{ ti.xcom_pull(task_ids='list') }}")
    s.job_ids = str(ids)  # what Airflow renders a list to: "['…', '…']"
    result, _ = poke_until_done(s, context, emu, limit=30)
    assert sorted(r["job_id"] for r in result.xcom_value) == sorted(ids)


def test_a_parent_and_its_child_both_named_count_the_child_once(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 2, "reason": "bad row"}]}, name="fan", indices=[3])
    parent = emu.submit("fan", arrayProperties={"size": 4})
    s = sensor(job_queue=None, job_ids=[parent, f"{parent}:3"], include_array_children=True, max_failed_jobs=1)
    result, _ = poke_until_done(s, context, emu)  # one failed child: tolerated, not counted twice
    assert sorted(r["job_id"] for r in result.xcom_value) == sorted(f"{parent}:{i}" for i in range(4))


def test_deferrable_with_soft_fail_skips_jobs_already_failed_as_poke_mode_does(
    emu: BatchEmulator, context: dict
) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="gone-bad")
    emu.submit("gone-bad")
    emu.advance(120)
    with pytest.raises(AirflowSkipException):
        sensor(job_name="gone-bad", soft_fail=True).execute(context)
    with pytest.raises(AirflowSkipException):  # decided at the poke before deferring: the same skip
        sensor(job_name="gone-bad", soft_fail=True, deferrable=True).execute(context)
    with pytest.raises(AirflowSkipException):
        sensor(job_name="gone-bad", never_fail=True, deferrable=True).execute(context)
    with pytest.raises(AirflowFailException):
        sensor(job_name="gone-bad", deferrable=True).execute(context)


def test_deferrable_defaults_to_operators_default_deferrable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert sensor().deferrable is False
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert sensor().deferrable is True
    assert sensor(deferrable=False).deferrable is False


def test_a_bug_in_our_code_is_not_reported_as_an_aws_rejection(emu: BatchEmulator, context: dict) -> None:
    emu.submit("job")
    with mock.patch.object(JobWatch, "poll", side_effect=KeyError("jobId")), pytest.raises(KeyError):
        sensor().poke(context)  # raised as it is (with its traceback; task retries apply), not AirflowFailException


def test_a_request_botocore_refuses_to_send_fails_the_task_at_once(emu: BatchEmulator, context: dict) -> None:
    """botocore checks a request's parameters before sending it (ParamValidationError): the same request is refused on
    every retry, so the first poke fails the task saying so. It was taken for a transient AWS fault: no verdict, poll
    after poll, until max_poll_errors."""
    emu.submit("job")
    s = sensor(max_poll_errors=3)

    def bad_page_size(params: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**params, "maxResults": "100"}  # a string where botocore's model wants an integer

    s.hook.conn.meta.events.register("provide-client-params.batch.ListJobs", bad_page_size)
    with pytest.raises(AirflowFailException) as err:
        s.poke(context)
    message = str(err.value)
    assert "botocore refused to send the request" in message and "maxResults" in message
    assert "polls in a row" not in message and emu.calls == {}  # never sent, never retried


def test_only_faults_that_can_pass_are_transient() -> None:
    refused = ParamValidationError(report="Invalid type for parameter jobs[0], value: 5")
    assert not is_transient(refused) and "refused to send" in str(rejected_request(refused))
    assert not is_transient(MissingParametersError(object_name="ListJobs", missing="jobQueue"))
    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))  # a connection: it may come back
    assert rejected_request(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")) is None
    throttled = ClientError({"Error": {"Code": "TooManyRequestsException"}}, "ListJobs")
    denied = ClientError({"Error": {"Code": "AccessDeniedException"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "x")
    assert is_transient(throttled) and rejected_request(throttled) is None
    assert not is_transient(denied) and "AWS Batch rejected the request" in str(rejected_request(denied))
    assert rejected_request(KeyError("jobId")) is None  # ours: raised as it is


@pytest.fixture
def short_retention(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A realistic emulator that keeps finished jobs for 2 minutes (the service: at least 7 days)."""
    from airflow_batch_jobs.testing import BatchEmulator

    with BatchEmulator(profile="realistic", retention_seconds=120) as emulator:
        emulator.setup()
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emulator.airflow_connection())
        yield emulator


@pytest.mark.parametrize("first_two", [(0, 0), (1, 0)], ids=["both-succeeded", "one-failed"])
def test_children_that_aged_out_unseen_are_recorded_with_real_ids_or_none(
    short_retention: Any, context: dict, first_two: tuple[int, int]
) -> None:
    """p:0 and p:1 finish and age out of the service before the wait begins; p:2 and p:3 run on. The parent's
    statusSummary proves how many of the two ended in each status. When it also tells which (both SUCCEEDED), their
    records carry their real ids; when it does not (one FAILED, one SUCCEEDED), no record, link or message may carry
    an id AWS Batch never gave: job_id None, and the ids it is one of (before: invented ids '<parent>:aged-out-…')."""
    emu = short_retention
    for index, exit_code in enumerate(first_two):
        emu.add_outcome({"attempts": [{"exit_code": exit_code, "duration": 10 + index}]}, name="fan", indices=[index])
    emu.add_outcome({"attempts": [{"exit_code": 0, "duration": 400}]}, name="fan")
    parent = emu.submit("fan", arrayProperties={"size": 4})
    emu.advance(250)
    assert [j["jobId"] for j in emu.client().describe_jobs(jobs=[f"{parent}:0", f"{parent}:1"])["jobs"]] == []
    s = sensor(job_name="fan", include_array_children=True, max_failed_jobs=1)
    result, _ = poke_until_done(s, context, emu, step=30)
    records = result.xcom_value
    assert sorted(r["status"] for r in records) == sorted(
        ["SUCCEEDED"] * (4 - sum(first_two)) + ["FAILED"] * sum(first_two)
    )
    real = {r["job_id"] for r in records if r["job_id"] is not None}
    assert all(job_id in emu.model.jobs for job_id in real)  # every id one the service gave
    if not any(first_two):
        assert real == {f"{parent}:{i}" for i in range(4)}
    else:
        assert real == {f"{parent}:2", f"{parent}:3"}
        stand_ins = [r for r in records if r["job_id"] is None]
        assert len(stand_ins) == 2 and all(r["job_arn"] is None for r in stand_ins)
        assert all(r["one_of_job_ids"] == [f"{parent}:0", f"{parent}:1"] for r in stand_ins)
        with pytest.raises(AirflowFailException) as err:  # one failure too many: the message and links
            poke_until_done(sensor(job_name="fan", include_array_children=True), context, emu)
        pushed = json.dumps(context["ti"].pushed)
        for text in (str(err.value), pushed):
            assert ":aged-out-" not in text
        assert f"one of {parent}:0, {parent}:1" in str(err.value)


def test_a_summary_showing_a_sidecar_s_exit_code_does_not_decide(context: dict) -> None:
    """ListJobs summaries carry one ``container.exitCode``; for a task with a sidecar it may be the sidecar's (137).
    The verdict is taken again on the details, where the essential container's 4 is a success exit code."""
    import boto3
    from botocore.stub import Stubber

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook

    client = boto3.client("batch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    hook = BatchJobsHook(aws_conn_id=None, region_name="us-east-1")
    hook.__dict__["conn"] = client
    base = {"jobId": "j-1", "jobName": "etl", "status": "FAILED", "createdAt": 1, "startedAt": 2, "stoppedAt": 3}
    summary = {**base, "jobArn": "arn:aws:batch:us-east-1:123456789012:job/j-1", "container": {"exitCode": 137}}
    task_containers = [{"name": "envoy", "exitCode": 137}, {"name": "main", "exitCode": 4, "reason": "partial"}]
    detail = {
        **base,
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/queue",
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/etl:1",
        "ecsProperties": {
            "taskProperties": [
                {
                    "containers": [
                        {"name": "envoy", "image": "envoy", "essential": False},
                        {"name": "main", "image": "etl"},
                    ]
                }
            ]
        },
        "attempts": [{"startedAt": 2, "stoppedAt": 3, "taskProperties": [{"containers": task_containers}]}],
    }
    s = sensor(success_exit_codes=[4])
    s.__dict__["hook"] = hook
    with Stubber(client) as stub:
        stub.add_response("list_jobs", {"jobSummaryList": [summary]})
        stub.add_response("describe_jobs", {"jobs": [detail]})
        result = s.poke(context)
        stub.assert_no_pending_responses()
    assert result and [(r["status"], r["final_exit_code"]) for r in result.xcom_value] == [("FAILED", 4)]


@pytest.fixture
def realistic_containers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An emulator whose ECS tasks have a non-essential sidecar (stopped with 137 or 143) and whose EKS pods have an
    init container."""
    from airflow_batch_jobs.testing import BatchEmulator

    with BatchEmulator(profile="realistic") as emulator:
        emulator.setup(definitions=("ecsdef",), kind="ecs")
        emulator.setup(definitions=("eksdef",), kind="eks")
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emulator.airflow_connection())
        yield emulator


def test_ecs_sidecars_and_eks_init_containers_end_to_end(realistic_containers: Any, context: dict) -> None:
    emu = realistic_containers
    emu.add_outcome({"attempts": [{"exit_code": 4, "reason": "partial"}]}, name="ecs-partial")
    emu.add_outcome({"attempts": [{"init_exit_code": 1, "init_reason": "AccessDenied: s3://in"}]}, name="eks-init")
    ecs_ok = emu.submit("ecs-ok", definition="ecsdef")
    emu.submit("ecs-partial", definition="ecsdef")
    eks = emu.submit("eks-init", definition="eksdef")
    result, _ = poke_until_done(sensor(job_name="ecs-*", success_exit_codes=[4]), context, emu)
    assert {r["job_id"]: r["final_exit_code"] for r in result.xcom_value}[ecs_ok] == 0
    assert sorted(r["final_exit_code"] for r in result.xcom_value) == [0, 4]  # never the sidecar's 137 / 143
    with pytest.raises(AirflowFailException) as err:
        poke_until_done(sensor(job_name="eks-*"), context, emu)
    assert f"eks-init ({eks}): FAILED" in str(err.value)
    assert "exit code 1 (init container " in str(err.value) and "AccessDenied: s3://in" in str(err.value)


def test_job_ids_are_described_once_per_poll(emu: BatchEmulator, context: dict) -> None:
    """With ``job_ids`` the listing is DescribeJobs itself: its answer holds the finished jobs' details, so they are
    not described a second time for the verdict (it was two DescribeJobs per poll)."""
    ids = [emu.submit(f"once-{i}") for i in range(3)]
    emu.advance(600)  # all finished
    emu.reset_counters()
    result = sensor(job_queue=None, job_ids=ids).poke(context)
    assert result and sorted(r["job_id"] for r in result.xcom_value) == sorted(ids)
    assert result.xcom_value[0]["attempts"][0]["log_stream"]  # the records still have the details
    assert emu.calls["DescribeJobs"] == 1
