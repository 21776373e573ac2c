"""The failed jobs' last log lines in the task log, and what kind of failure it was: poke, deferrable and the check
operator; array children, multi-node nodes and ECS task containers; a 10,000-line stream read by its tail; what
cannot be read said in one line, with the verdict unchanged and its time bounded."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, TaskDeferred

from airflow_batch_jobs import log_tail
from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.operators.batch_jobs import BatchCheckJobsOperator
from airflow_batch_jobs.policy import InvalidPolicyError
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing.scenario import definition_body
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from airflow_batch_jobs.verdict_event import resolve_event

from .conftest import poke_until_done

if TYPE_CHECKING:
    from airflow_batch_jobs.testing import BatchEmulator

EMULATOR_PROFILE = "realistic"  # the service's awkward behaviours on (tests/airflow/conftest.py)
GROUP = "/aws/batch/job"
LINES = [f"etl line {i}" for i in range(30)]


def sensor(**kwargs: Any) -> BatchJobsSensor:
    kwargs.setdefault("job_queue", "queue")
    return BatchJobsSensor(task_id="wait", poke_interval=5, **kwargs)


def failing(emu: BatchEmulator, name: str, lines: list[str] | None = LINES, **attempt: Any) -> None:
    script = {"exit_code": 2, "reason": "AccessDenied: s3://reports", **attempt}
    if lines is not None:
        script["log"] = lines
    emu.add_outcome({"attempts": [script]}, name=name)


def log_requests(emu: BatchEmulator) -> list[dict[str, Any]]:
    """The GetLogEvents requests the emulator answered (or failed on purpose)."""
    return [e.get("params", {}) for e in emu.faults.log if e["operation"] == "GetLogEvents"]


@pytest.fixture
def task_log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the sensor and the check operator write to their task log, one entry per call (Airflow 3's task logger
    is structlog's, which pytest's caplog does not see)."""
    said: list[str] = []

    class Recorder:
        def __getattr__(self, level: str) -> Any:
            return lambda message, *args, **_: said.append(str(message) % args if args else str(message))

    for cls in (BatchJobsSensor, BatchCheckJobsOperator):
        monkeypatch.setattr(cls, "log", property(lambda self: Recorder()))
    return said


def tails(task_log: list[str]) -> list[str]:
    """The task log's entries about the jobs' log lines (one per job), not the progress lines."""
    return [entry for entry in task_log if entry.startswith(("Last ", "Log lines of "))]


def framed(task_log: list[str]) -> list[str]:
    """The jobs' lines as the task log shows them, inside their frame."""
    return [line for entry in task_log for line in entry.splitlines() if line.startswith(log_tail.FRAME)]


def text_of(task_log: list[str]) -> str:
    return "\n".join(task_log)


def failure_of(task: Any, context: dict, emu: BatchEmulator) -> str:
    with pytest.raises(AirflowFailException) as err:
        poke_until_done(task, context, emu)
    return str(err.value)


def test_poke_shows_the_last_lines_framed_with_the_class_in_message_and_records(
    emu: BatchEmulator, context: dict, task_log: list[str]
) -> None:
    failing(emu, "etl-publish")
    emu.submit("etl-extract")
    bad = emu.submit("etl-publish")
    message = failure_of(sensor(job_name="etl-*", log_lines=5), context, emu)
    assert message.splitlines()[0] == "1 of 2 AWS Batch job(s) failed (tolerated: 0): 1 application."
    assert "[application]" in message and "=> application: the job's own code exited" in message
    record = context["ti"].pushed["return_value"][0]
    assert record["failure_class"] == "application" and record["attempts"][0]["failure_class"] == "application"
    header = f"Last 5 log line(s) of etl-publish ({bad}), attempt 1, log stream {record['log_stream']} in {GROUP}:"
    assert any(entry.startswith(header) for entry in task_log)
    assert framed(task_log) == [log_tail.FRAME + line for line in LINES[-5:]]  # as the job wrote them
    assert log_requests(emu) == [
        {"logGroupName": GROUP, "logStreamName": record["log_stream"], "startFromHead": False, "limit": 5}
    ]


def test_deferrable_reads_the_lines_on_the_worker_after_the_trigger(
    emu: BatchEmulator, context: dict, task_log: list[str]
) -> None:
    failing(emu, "etl-publish", duration=60)
    bad = emu.submit("etl-publish")
    waiting = sensor(job_name="etl-*", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute(context)

    async def emulated_sleep(seconds: float) -> None:
        emu.advance(30)
        await asyncio.sleep(0)

    async def first_event() -> dict[str, Any]:
        with mock.patch.object(SharedPoll, "sleep", staticmethod(emulated_sleep)):
            async for event in deferred.value.trigger.run():
                return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event["status"] == "failure" and log_requests(emu) == []  # the trigger reads no log
    where = resolve_event(event, BatchJobsHook(), "summary")["logs"][0]  # as the worker reads the event
    assert where["job_id"] == bad and "etl line" not in str(event)  # where, not what
    with pytest.raises(AirflowFailException, match="1 application"):
        waiting.execute_complete(context, event)
    assert f"Last 20 log line(s) of etl-publish ({bad}), attempt 1" in text_of(task_log)
    assert log_tail.FRAME + LINES[-1] in text_of(task_log) and log_tail.FRAME + LINES[9] not in text_of(task_log)
    assert [r["limit"] for r in log_requests(emu)] == [20]


def test_the_check_operator_shows_failed_and_skip_code_jobs_lines(
    emu: BatchEmulator, context: dict, task_log: list[str]
) -> None:
    failing(emu, "bad", ["bad's last word"])
    emu.add_outcome({"attempts": [{"exit_code": 3, "log": ["no new data since yesterday"]}]}, name="nodata")
    emu.submit("bad")
    emu.advance(120)
    with pytest.raises(AirflowFailException):
        BatchCheckJobsOperator(task_id="check", job_queue="queue", job_name="bad").execute(context)
    assert log_tail.FRAME + "bad's last word" in text_of(task_log)
    emu.submit("nodata")
    emu.advance(120)
    task_log.clear()
    with pytest.raises(AirflowSkipException):
        BatchCheckJobsOperator(task_id="check", job_queue="queue", job_name="nodata", skip_exit_codes=[3]).execute(
            context
        )
    assert log_tail.FRAME + "no new data since yesterday" in text_of(task_log)


def test_array_children_and_multi_node_nodes_are_jobs_with_their_own_streams(
    emu: BatchEmulator, context: dict, task_log: list[str]
) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1, "log": ["child 3 could not parse row 7"]}]}, name="fan", indices=[3])
    parent = emu.submit("fan", arrayProperties={"size": 5})
    emu.setup(definitions=("mpi",), kind="multinode")
    emu.add_outcome({"attempts": [{"exit_code": 9, "log": ["node 1 lost its peer"]}]}, name="mpi", indices=[1])
    mnp = emu.submit("mpi", definition="mpi")
    message = failure_of(sensor(job_queue=None, array_job_id=parent, job_name=None), context, emu)
    assert f"fan ({parent}:3): FAILED" in message
    assert f"Last 1 log line(s) of fan ({parent}:3), attempt 1" in text_of(task_log)
    assert log_tail.FRAME + "child 3 could not parse row 7" in text_of(task_log)
    task_log.clear()
    message = failure_of(sensor(job_queue=None, multi_node_job_id=mnp, job_name=None), context, emu)
    assert f"mpi ({mnp}#1): FAILED" in message
    assert f"Last 1 log line(s) of mpi ({mnp}#1), attempt 1" in text_of(task_log)
    assert log_tail.FRAME + "node 1 lost its peer" in text_of(task_log)


def test_ecs_jobs_show_the_essential_containers_stream_in_its_log_group(
    emu: BatchEmulator, context: dict, task_log: list[str]
) -> None:
    body = definition_body("task", "ecs", behaviours=emu.behaviours)  # realistic: a non-essential log-router too
    body["ecsProperties"]["taskProperties"][0]["containers"][0]["logConfiguration"] = {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/batch/etl", "awslogs-region": "us-east-1"},
    }
    emu.model.register_job_definition(body)
    emu.add_outcome({"attempts": [{"exit_code": 5, "log": ["main: schema mismatch"]}]}, name="ecs-job")
    job = emu.submit("ecs-job", definition="task")
    message = failure_of(sensor(job_name="ecs-job"), context, emu)
    assert "(container 'main')" in message and "[application]" in message
    (request,) = log_requests(emu)
    assert request["logGroupName"] == "/batch/etl" and "/main/" in request["logStreamName"]
    assert f"Last 1 log line(s) of ecs-job ({job}), attempt 1" in text_of(task_log)
    assert log_tail.FRAME + "main: schema mismatch" in text_of(task_log)
    assert "log-router" not in text_of(task_log)  # the sidecar's stream is not the job's


def test_a_10000_line_stream_is_read_by_its_tail_in_one_call(
    emu: BatchEmulator, context: dict, task_log: list[str]
) -> None:
    lines = [f"row {i}" for i in range(10_000)]
    failing(emu, "big", lines)
    emu.submit("big")
    failure_of(sensor(job_name="big"), context, emu)
    (request,) = log_requests(emu)
    assert request["startFromHead"] is False and request["limit"] == 20 and "nextToken" not in request
    assert framed(task_log) == [log_tail.FRAME + line for line in lines[-20:]]


def test_access_denied_or_a_missing_stream_is_one_line_and_the_verdict_stands(
    emu: BatchEmulator, context: dict, task_log: list[str]
) -> None:
    failing(emu, "logged")
    emu.add_outcome({"attempts": [{"exit_code": None, "reason": "CannotPullContainerError: not found"}]}, name="pull")
    logged = emu.submit("logged")
    pull = emu.submit("pull")
    without_logs = failure_of(sensor(fail_fast=False, log_lines=0), context, emu)
    assert log_requests(emu) == []  # log_lines=0: nothing read

    emu.inject("GetLogEvents", "denied")
    assert failure_of(sensor(fail_fast=False), context, emu) == without_logs  # the same verdict and message
    assert "1 infrastructure, 1 application" in without_logs
    assert len(tails(task_log)) == 2 and framed(task_log) == []  # one line a job
    assert all("access denied" in entry and entry.endswith("The verdict stands.") for entry in tails(task_log))
    assert {"\n" in entry for entry in tails(task_log)} == {False}

    emu.clear_faults()
    task_log.clear()
    assert failure_of(sensor(fail_fast=False), context, emu) == without_logs
    (missing,) = [entry for entry in tails(task_log) if f"pull ({pull})" in entry]
    assert "not read: it does not exist" in missing and "\n" not in missing
    assert any(entry.startswith(f"Last 20 log line(s) of logged ({logged})") for entry in task_log)


def test_throttling_is_one_line(emu: BatchEmulator, context: dict, task_log: list[str]) -> None:
    failing(emu, "busy")
    emu.submit("busy")
    emu.inject("GetLogEvents", "throttling")
    failure_of(sensor(botocore_config={"retries": {"total_max_attempts": 1}}), context, emu)
    assert "CloudWatch Logs throttled the call" in text_of(task_log) and log_tail.FRAME + LINES[-1] not in "\n".join(
        task_log
    )


def test_a_slow_call_is_left_behind_at_the_bound(
    emu: BatchEmulator, context: dict, task_log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing(emu, "slow")
    emu.submit("slow")
    monkeypatch.setattr(log_tail, "LOG_TAIL_TIMEOUT_S", 0.5)
    emu.inject("GetLogEvents", "latency", seconds=5)
    message = failure_of(sensor(), context, emu)
    assert message.startswith("1 of 1 AWS Batch job(s) failed")
    assert "not read: no answer within 0.5 s. The verdict stands." in text_of(task_log)


def test_at_most_log_jobs_jobs_failed_first(emu: BatchEmulator, context: dict) -> None:
    for name in ("a", "b", "c"):
        failing(emu, f"bad-{name}")
        emu.submit(f"bad-{name}")
    emu.submit("fine")
    failure_of(sensor(fail_fast=False, log_jobs=2), context, emu)
    failed = [r["log_stream"] for r in context["ti"].pushed["return_value"] if r["status"] == "FAILED"]
    assert sorted(r["logStreamName"] for r in log_requests(emu)) == sorted(failed[:2])


def test_eks_and_summary_only_jobs_say_why_there_is_nothing_to_read(
    emu: BatchEmulator, context: dict, task_log: list[str]
) -> None:
    emu.setup(definitions=("pod",), kind="eks")
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="eks-job")
    emu.submit("eks-job", definition="pod")
    failure_of(sensor(job_name="eks-job"), context, emu)
    assert "none to read: an EKS job logs to its cluster" in text_of(task_log) and log_requests(emu) == []


@pytest.mark.parametrize(
    ("argument", "value", "needle"),
    [
        ("log_lines", -1, "log_lines=-1: use a whole number from 0 (no log lines) to 10000"),
        ("log_lines", 10_001, "log_lines=10001"),
        ("log_lines", "20", "log_lines='20'"),
        ("log_lines", True, "log_lines=True"),
        ("log_jobs", 21, "log_jobs=21: use a whole number from 0 (no log lines) to 20"),
        ("log_jobs", -1, "log_jobs=-1"),
    ],
)
def test_bad_log_arguments_fail_at_parse_time(argument: str, value: Any, needle: str) -> None:
    for build in (
        lambda: sensor(**{argument: value}),
        lambda: BatchCheckJobsOperator(task_id="check", job_queue="queue", **{argument: value}),
    ):
        with pytest.raises(InvalidPolicyError) as err:
            build()
        assert needle in str(err.value)


SPOT = "Host EC2 (instance i-0123456789abcdef0) terminated."
OOM = "OutOfMemoryError: Container killed due to memory usage"


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        ({"exit_code": None, "status_reason": SPOT}, "infrastructure"),
        ({"exit_code": None, "reason": "CannotPullContainerError: manifest unknown"}, "infrastructure"),
        ({"exit_code": 137, "reason": OOM}, "out_of_memory"),
        ({"exit_code": 137, "status_reason": "Job attempt duration exceeded timeout"}, "timeout"),
        ({"exit_code": 4, "reason": "ValueError: bad row"}, "application"),
        ({"exit_code": None}, "unknown"),
    ],
)
def test_each_class_scripted_on_the_emulator_reaches_message_and_records(
    emu: BatchEmulator, context: dict, attempt: dict[str, Any], expected: str
) -> None:
    emu.add_outcome({"attempts": [attempt]}, name="classed")
    emu.submit("classed")
    message = failure_of(sensor(job_name="classed", log_lines=0), context, emu)
    label = expected.replace("_", " ")
    assert message.splitlines()[0].endswith(f": 1 {label}.") and f"=> {label}: " in message
    (record,) = context["ti"].pushed["return_value"]
    assert record["failure_class"] == expected and record["attempts"][-1]["failure_class"] == expected


def test_a_terminated_job_is_cancelled_whatever_its_attempts_showed(emu: BatchEmulator, context: dict) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 137, "reason": OOM, "duration": 10}, {"duration": 600}]}, name="long")
    job = emu.submit("long", retryStrategy={"attempts": 2})
    emu.advance(6 + 10 + 4 + 30)  # the first attempt was killed; the retry runs
    emu.client().terminate_job(jobId=job, reason="stopped by the on-call engineer")
    message = failure_of(sensor(job_name="long", log_lines=0), context, emu)
    assert "1 cancelled." in message.splitlines()[0] and "stopped by the on-call engineer" in message
    (record,) = context["ti"].pushed["return_value"]
    assert record["failure_class"] == "cancelled"
    assert [a["failure_class"] for a in record["attempts"]] == ["out_of_memory", "cancelled"]
