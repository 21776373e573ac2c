"""The emulated CloudWatch Logs: each attempt's stream on the emulator's endpoint, as a boto3 ``logs`` client reads
it (GetLogEvents as the API reference describes it, DescribeLogStreams), scripted or plausible lines written over
the attempt's run, streams that never exist, other log groups, faults."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.testing.emulator import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from airflow_batch_jobs.testing.scenario import definition_body

GROUP = "/aws/batch/job"
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def logs_client(emulator: BatchEmulator) -> Any:
    """A boto3 CloudWatch Logs client for the emulator's endpoint (the one its Batch client uses)."""
    return boto3.client(
        "logs",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        config=NO_RETRY,
    )


@pytest.fixture
def logs(batch_emulator: BatchEmulator) -> Any:
    return logs_client(batch_emulator)


def streams_of(client: Any, job_id: str) -> list[str]:
    """Each attempt's stream, the running one's included (DescribeJobs lists finished attempts only)."""
    detail = client.describe_jobs(jobs=[job_id])["jobs"][0]
    streams = [a["container"]["logStreamName"] for a in detail["attempts"]]
    running = detail["container"].get("logStreamName")
    return [*streams, running] if running and running not in streams else streams


def messages(answer: dict[str, Any]) -> list[str]:
    return [e["message"] for e in answer["events"]]


def test_scripted_lines_appear_as_the_attempt_writes_them(
    batch_emulator: BatchEmulator, batch_client: Any, logs: Any
) -> None:
    lines = [f"step {i}" for i in range(9)]
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1, "duration": 100, "log": lines}]}, name="etl")
    job = batch_emulator.submit("etl")
    batch_emulator.advance(6 + 50)  # six waiting seconds, then half the attempt's 100 s
    (stream,) = streams_of(batch_client, job)
    half = messages(logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True))
    assert half == lines[:5]  # written at 10, 20, ... 90 s of the run: five by 50 s
    batch_emulator.advance(100)
    answer = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)
    assert messages(answer) == lines
    stamps = [e["timestamp"] for e in answer["events"]]
    assert stamps == sorted(stamps) and all(e["ingestionTime"] >= e["timestamp"] for e in answer["events"])


def test_a_stream_exists_only_once_its_container_started(
    batch_emulator: BatchEmulator, batch_client: Any, logs: Any
) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1, "duration": 10}, {"exit_code": 0}]}, name="etl")
    job = batch_emulator.submit("etl", retryStrategy={"attempts": 2})
    batch_emulator.advance(6 + 10 + 1)  # the first attempt failed a second ago; the retry waits to start again
    assert batch_client.describe_jobs(jobs=[job])["jobs"][0]["status"] == "RUNNABLE"
    refs = batch_emulator.model.shapes.log_streams.refs  # the retry's stream name, before any answer names it
    (retry_stream,) = [stream for (_, stream), ref in refs.items() if ref.job.job_id == job and ref.index == 1]
    with pytest.raises(ClientError, match="log stream does not exist"):
        logs.get_log_events(logGroupName=GROUP, logStreamName=retry_stream)
    batch_emulator.advance(30)
    assert streams_of(batch_client, job)[1] == retry_stream
    assert messages(logs.get_log_events(logGroupName=GROUP, logStreamName=retry_stream))


def test_the_tail_is_the_latest_events_and_tokens_page_both_ways(
    batch_emulator: BatchEmulator, batch_client: Any, logs: Any
) -> None:
    lines = [f"line {i}" for i in range(10_000)]
    batch_emulator.add_outcome({"attempts": [{"exit_code": 2, "log": lines}]}, name="big")
    job = batch_emulator.submit("big")
    batch_emulator.advance(60)
    (stream,) = streams_of(batch_client, job)
    tail = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=False, limit=20)
    assert messages(tail) == lines[-20:]  # startFromHead false: the latest, oldest first within the page
    before = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, nextToken=tail["nextBackwardToken"], limit=5)
    assert messages(before) == lines[-25:-20]
    at_end = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, nextToken=tail["nextForwardToken"])
    assert at_end["events"] == [] and at_end["nextForwardToken"] == tail["nextForwardToken"]  # the end: same token
    head = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True, limit=3)
    assert messages(head) == lines[:3]
    after = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, nextToken=head["nextForwardToken"], limit=3)
    assert messages(after) == lines[3:6]
    assert tail["nextForwardToken"].startswith("f/") and tail["nextBackwardToken"].startswith("b/")
    assert len(messages(logs.get_log_events(logGroupName=GROUP, logStreamName=stream))) == 10_000  # the default


def test_a_page_holds_at_most_one_megabyte(batch_emulator: BatchEmulator, batch_client: Any, logs: Any) -> None:
    lines = [f"{i:04d}" + "x" * 2000 for i in range(1000)]  # about 2 MB
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1, "log": lines}]}, name="wide")
    job = batch_emulator.submit("wide")
    batch_emulator.advance(60)
    (stream,) = streams_of(batch_client, job)
    tail = messages(logs.get_log_events(logGroupName=GROUP, logStreamName=stream))
    assert 0 < len(tail) < 1000 and tail == lines[-len(tail) :]
    assert sum(len(m) + 26 for m in tail) <= 1_048_576


def test_unscripted_attempts_write_plausible_lines_that_fit_their_end(
    batch_emulator: BatchEmulator, batch_client: Any, logs: Any
) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 3, "reason": "no input"}, {"exit_code": 0}]}, name="etl")
    job = batch_emulator.submit("etl", retryStrategy={"attempts": 2})
    batch_emulator.advance(120)
    first, second = (
        messages(logs.get_log_events(logGroupName=GROUP, logStreamName=s)) for s in streams_of(batch_client, job)
    )
    assert first[0] == "starting etl (attempt 1)" and first[-1] == "exiting with code 3" and "no input" in first[-2]
    assert second[0] == "starting etl (attempt 2)" and second[-1].startswith("done")


def test_containers_that_never_started_leave_no_stream(
    batch_emulator: BatchEmulator, batch_client: Any, logs: Any
) -> None:
    batch_emulator.add_outcome(
        {"attempts": [{"exit_code": None, "reason": "CannotPullContainerError: not found"}]}, name="pull"
    )
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1, "log": False}]}, name="quiet")
    for name in ("pull", "quiet"):
        job = batch_emulator.submit(name)
        batch_emulator.advance(60)
        (stream,) = streams_of(batch_client, job)  # the service names a stream all the same
        with pytest.raises(ClientError, match=r"ResourceNotFoundException.*log stream does not exist"):
            logs.get_log_events(logGroupName=GROUP, logStreamName=stream)


def test_a_log_configuration_names_the_group(batch_emulator: BatchEmulator, batch_client: Any, logs: Any) -> None:
    body = definition_body("custom")
    body["containerProperties"]["logConfiguration"] = {"logDriver": "awslogs", "options": {"awslogs-group": "/etl"}}
    batch_emulator.model.register_job_definition(body)
    job = batch_emulator.submit("etl", definition="custom")
    batch_emulator.advance(60)
    detail = batch_client.describe_jobs(jobs=[job])["jobs"][0]
    assert detail["container"]["logConfiguration"]["options"]["awslogs-group"] == "/etl"
    (stream,) = streams_of(batch_client, job)
    assert messages(logs.get_log_events(logGroupName="/etl", logStreamName=stream))
    with pytest.raises(ClientError, match="log stream does not exist"):
        logs.get_log_events(logGroupName=GROUP, logStreamName=stream)
    with pytest.raises(ClientError, match="log group does not exist"):
        logs.get_log_events(logGroupName="/nowhere", logStreamName=stream)


def test_ecs_containers_each_have_their_stream(batch_emulator: BatchEmulator, batch_client: Any, logs: Any) -> None:
    body = definition_body("task", "ecs")
    body["ecsProperties"]["taskProperties"][0]["containers"].append(
        {"name": "log-router", "image": "fluent-bit", "essential": False}
    )
    batch_emulator.model.register_job_definition(body)
    batch_emulator.add_outcome({"attempts": [{"exit_code": 4, "log": ["main says why"]}]}, name="ecs")
    job = batch_emulator.submit("ecs", definition="task")
    batch_emulator.advance(60)
    detail = batch_client.describe_jobs(jobs=[job])["jobs"][0]
    by_name = {c["name"]: c["logStreamName"] for c in detail["attempts"][0]["taskProperties"][0]["containers"]}
    assert messages(logs.get_log_events(logGroupName=GROUP, logStreamName=by_name["main"])) == ["main says why"]
    sidecar = messages(logs.get_log_events(logGroupName=GROUP, logStreamName=by_name["log-router"]))
    assert sidecar and "main says why" not in sidecar


def test_describe_log_streams_lists_the_group(batch_emulator: BatchEmulator, batch_client: Any, logs: Any) -> None:
    ids = [batch_emulator.submit(f"etl-{i}") for i in range(3)]
    batch_emulator.advance(60)
    names = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=GROUP)["logStreams"]]
    assert sorted(names) == names and sorted(names) == sorted(s for j in ids for s in streams_of(batch_client, j))
    page = logs.describe_log_streams(logGroupName=GROUP, limit=2)
    assert len(page["logStreams"]) == 2 and page["nextToken"]
    rest = logs.describe_log_streams(logGroupName=GROUP, limit=2, nextToken=page["nextToken"])["logStreams"]
    assert [s["logStreamName"] for s in page["logStreams"] + rest] == names
    newest = logs.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", descending=True, limit=1)
    assert newest["logStreams"][0]["lastEventTimestamp"] >= max(
        s["lastEventTimestamp"] for s in logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    )


def test_requests_are_checked_against_the_logs_model(batch_emulator: BatchEmulator, logs: Any) -> None:
    with pytest.raises(ParamValidationError):  # botocore refuses it before sending
        logs.get_log_events(logGroupName=GROUP)
    raw = boto3.client(
        "logs",
        endpoint_url=batch_emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError, match="logStreamName"):  # the emulator checks what botocore was told not to
        raw.get_log_events(logGroupName=GROUP)
    with pytest.raises(ClientError, match="limit"):
        raw.get_log_events(logGroupName=GROUP, logStreamName="x", limit=20_000)


def test_faults_cover_the_logs_calls(batch_emulator: BatchEmulator, batch_client: Any, logs: Any) -> None:
    job = batch_emulator.submit("etl")
    batch_emulator.advance(60)
    (stream,) = streams_of(batch_client, job)
    batch_emulator.inject("GetLogEvents", "throttling", count=1)
    with pytest.raises(ClientError, match="ThrottlingException"):
        logs.get_log_events(logGroupName=GROUP, logStreamName=stream)
    batch_emulator.inject("GetLogEvents", "denied", count=1)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        logs.get_log_events(logGroupName=GROUP, logStreamName=stream)
    assert messages(logs.get_log_events(logGroupName=GROUP, logStreamName=stream))
    assert batch_emulator.calls["GetLogEvents"] == 3
    asked = [e["params"] for e in batch_emulator.faults.log if e["operation"] == "GetLogEvents" and "params" in e]
    assert asked == [{"logGroupName": GROUP, "logStreamName": stream}]  # what a test can assert a reader asked


def test_a_scenario_scripts_lines_reasons_and_the_log_group() -> None:
    scenario = {
        "queues": ["nightly"],
        "job_definitions": [{"name": "etl", "log_group": "/etl/jobs"}],
        "outcomes": [
            {
                "match": {"name": "spot"},
                "attempts": [
                    {"exit_code": None, "status_reason": "Host EC2 (instance i-0abc) terminated.", "log": ["a"]}
                ],
            }
        ],
        "submit": [{"at": 0, "name": "spot", "queue": "nightly", "definition": "etl"}],
    }
    with BatchEmulator(scenario=scenario) as emu:
        emu.advance(60)
        client = emu.client()
        job = client.list_jobs(jobQueue="nightly", filters=[{"name": "AFTER_CREATED_AT", "values": ["0"]}])
        detail = client.describe_jobs(jobs=[job["jobSummaryList"][0]["jobId"]])["jobs"][0]
        assert detail["statusReason"] == "Host EC2 (instance i-0abc) terminated."
        stream = detail["attempts"][0]["container"]["logStreamName"]
        answer = logs_client(emu).get_log_events(logGroupName="/etl/jobs", logStreamName=stream)
        assert messages(answer) == ["a"]
    with pytest.raises(ValueError, match="log=7: give a list of lines"):
        BatchEmulator(scenario={**scenario, "outcomes": [{"match": {"name": "x"}, "attempts": [{"log": 7}]}]})


def test_the_amazon_providers_logs_hook_reads_the_emulator(
    batch_emulator: BatchEmulator, batch_client: Any, batch_aws_conn: str
) -> None:
    """AwsLogsHook's own calls: get_log_events (pages forward until the token repeats) and describe_log_streams."""
    lines = [f"line {i}" for i in range(25)]
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1, "log": lines}]}, name="etl")
    job = batch_emulator.submit("etl")
    batch_emulator.advance(60)
    (stream,) = streams_of(batch_client, job)
    hook = AwsLogsHook(aws_conn_id=batch_aws_conn)
    assert [e["message"] for e in hook.get_log_events(GROUP, stream)] == lines
    found = asyncio.run(hook.describe_log_streams_async(GROUP, stream[:10], "LogStreamName", 5))
    assert found is not None and [s["logStreamName"] for s in found["logStreams"]] == [stream]
