"""The emulator checked by clients nobody on this project wrote.

- the AWS CLI v1 (``awscli``, with its own vendored botocore) run as a subprocess: auto-pagination, ``--page-size`` /
  ``--max-items`` / ``--starting-token``, service errors and exit codes;
- the amazon provider's ``BatchClientHook`` (``wait_for_job``, ``get_job_all_awslogs_info``), ``BatchWaitersHook``
  with its default waiter config, and ``BatchJobTrigger`` run to its end;
- botocore's own ``examples-1.json`` for batch replayed: every key of an example's answer must be in the emulator's
  answer at the same nesting ("full answers");
- answers the real service gives that an earlier probe found missing (one test each).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest
from airflow.exceptions import AirflowException
from airflow.providers.amazon.aws.hooks import batch_waiters as batch_waiters_module
from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
from airflow.providers.amazon.aws.hooks.batch_waiters import BatchWaitersHook
from airflow.providers.amazon.aws.triggers.batch import BatchJobTrigger
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.model import ListShape, StructureShape

from airflow_batch_jobs.testing import BatchEmulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from botocore.model import Shape

REGION = "us-east-1"
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
LIST_FIELDS = ("environment", "mountPoints", "ulimits", "volumes")
LOG_GROUP = "/batch/third-party"
AWSLOGS = {"logDriver": "awslogs", "options": {"awslogs-group": LOG_GROUP}}
RESOURCES = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]

SERVICE = botocore.session.get_session().get_service_model("batch")
EXAMPLES: dict[str, list[dict[str, Any]]] = (
    botocore.session.get_session().get_component("data_loader").load_service_model("batch", "examples-1")["examples"]
)
SERVED = (
    "SubmitJob",
    "ListJobs",
    "DescribeJobs",
    "CancelJob",
    "TerminateJob",
    "CreateComputeEnvironment",
    "DescribeComputeEnvironments",
    "CreateJobQueue",
    "DescribeJobQueues",
    "RegisterJobDefinition",
    "DescribeJobDefinitions",
)


def _client_error(call: Callable[..., Any], **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["Error"]["Code"] == "ClientException", err.value.response
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value


def _describe(client: Any, job_id: str) -> dict[str, Any]:
    jobs = client.describe_jobs(jobs=[job_id])["jobs"]
    assert [j["jobId"] for j in jobs] == [job_id]
    return dict(jobs[0])


def _advance_to(emu: BatchEmulator, client: Any, job_id: str, status: str, limit: int = 600) -> dict[str, Any]:
    """Move the manual clock a second at a time until the job shows ``status``; its description."""
    for _ in range(limit):
        detail = _describe(client, job_id)
        if detail["status"] == status:
            return detail
        emu.advance(1)
    raise AssertionError(f"job {job_id} never reached {status} (last: {detail['status']})")


def _mnp_definition(client: Any, name: str, ranges: list[dict[str, Any]], num_nodes: int = 3) -> None:
    client.register_job_definition(
        jobDefinitionName=name,
        type="multinode",
        nodeProperties={"numNodes": num_nodes, "mainNode": 0, "nodeRangeProperties": ranges},
    )


# ---------------------------------------------------------------------------------------------------------------
# AWS CLI v1
# ---------------------------------------------------------------------------------------------------------------


def _aws(emu: BatchEmulator, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``aws batch <args>`` against the emulator, isolated from any real AWS configuration on this machine."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    cmd = [sys.executable, "-m", "awscli", "batch", *args, "--endpoint-url", emu.endpoint_url, "--output", "json"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


def _aws_json(emu: BatchEmulator, home: Path, *args: str) -> dict[str, Any]:
    done = _aws(emu, home, *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _submit_named(emu: BatchEmulator, prefix: str, count: int) -> None:
    for i in range(count):
        emu.submit(f"{prefix}{i:03d}")


@pytest.mark.slow  # runs the AWS CLI, a new Python process per call
def test_cli_auto_paginates_past_100_matching_jobs(batch_emulator: BatchEmulator, tmp_path: Path) -> None:
    _submit_named(batch_emulator, "cli-", 150)
    _submit_named(batch_emulator, "other-", 5)
    batch_emulator.reset_counters()
    out = _aws_json(
        batch_emulator, tmp_path, "list-jobs", "--job-queue", "queue", "--filters", "name=JOB_NAME,values=cli-*"
    )
    names = [j["jobName"] for j in out["jobSummaryList"]]
    assert len(names) == 150 and sorted(names) == [f"cli-{i:03d}" for i in range(150)]
    assert "NextToken" not in out
    assert batch_emulator.calls.get("ListJobs") == 2  # pages of 100 (the most with a filter) and 50


@pytest.mark.slow  # runs the AWS CLI, a new Python process per call
def test_cli_page_size_and_max_items_with_its_own_token(
    batch_emulator: BatchEmulator, batch_client: Any, tmp_path: Path
) -> None:
    _submit_named(batch_emulator, "cli-", 150)
    flt = ["--filters", "name=JOB_NAME,values=cli-*"]
    paginator = batch_client.get_paginator("list_jobs")
    expected = [
        j["jobId"]
        for page in paginator.paginate(jobQueue="queue", filters=[{"name": "JOB_NAME", "values": ["cli-*"]}])
        for j in page["jobSummaryList"]
    ]
    batch_emulator.reset_counters()
    first = _aws_json(
        batch_emulator, tmp_path, "list-jobs", "--job-queue", "queue", *flt, "--page-size", "40", "--max-items", "60"
    )
    assert len(first["jobSummaryList"]) == 60
    assert batch_emulator.calls.get("ListJobs") == 2  # 40 + 40, cut at 60
    token = first["NextToken"]  # the CLI's own token: the service's nextToken plus how much of that page it used
    decoded = json.loads(base64.b64decode(token))
    assert decoded["boto_truncate_amount"] == 20 and decoded["nextToken"]
    rest = _aws_json(
        batch_emulator,
        tmp_path,
        "list-jobs",
        "--job-queue",
        "queue",
        *flt,
        "--page-size",
        "40",
        "--starting-token",
        token,
    )
    assert "NextToken" not in rest
    ids = [j["jobId"] for j in first["jobSummaryList"] + rest["jobSummaryList"]]
    assert ids == expected and len(set(ids)) == 150  # newest first, nothing lost or repeated across the resume


@pytest.mark.slow  # runs the AWS CLI, a new Python process per call
def test_cli_service_errors_exit_255_with_the_services_message(batch_emulator: BatchEmulator, tmp_path: Path) -> None:
    unknown = _aws(batch_emulator, tmp_path, "list-jobs", "--job-queue", "no-such-queue", "--job-status", "RUNNING")
    assert unknown.returncode == 255, unknown
    assert "An error occurred (ClientException) when calling the ListJobs operation: " in unknown.stderr
    assert "no-such-queue" in unknown.stderr
    two = _aws(
        batch_emulator,
        tmp_path,
        "list-jobs",
        "--job-queue",
        "queue",
        "--filters",
        "name=JOB_NAME,values=a",
        "name=JOB_DEFINITION,values=b",
    )
    assert two.returncode == 255, two
    assert two.stderr.strip().endswith(
        "An error occurred (ClientException) when calling the ListJobs operation: "
        "Only one filter key-value pair can be specified."
    ), two.stderr


@pytest.mark.slow  # runs the AWS CLI, a new Python process per call
def test_cli_submit_then_describe(batch_emulator: BatchEmulator, tmp_path: Path) -> None:
    submitted = _aws_json(
        batch_emulator,
        tmp_path,
        "submit-job",
        "--job-name",
        "cli-one",
        "--job-queue",
        "queue",
        "--job-definition",
        "jobdef",
    )
    assert submitted["jobName"] == "cli-one"
    batch_emulator.advance(120)
    (job,) = _aws_json(batch_emulator, tmp_path, "describe-jobs", "--jobs", submitted["jobId"])["jobs"]
    assert (job["jobId"], job["status"]) == (submitted["jobId"], "SUCCEEDED")
    assert job["attempts"][0]["container"]["exitCode"] == 0


# ---------------------------------------------------------------------------------------------------------------
# The amazon provider: BatchClientHook, BatchWaitersHook, BatchJobTrigger
# ---------------------------------------------------------------------------------------------------------------

SPEED = 50.0  # emulated seconds per wall second: a job's default life (16 s) takes about 0.3 s
POLL = 0.02  # seconds between the provider's polls
MAX_POLLS = 1500  # bounds every wait, so a job that never finishes fails the test instead of hanging it


@pytest.fixture
def fast_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchEmulator]:
    """An emulator on a scaled clock, ``aws_default`` pointing at it."""
    with BatchEmulator(speed=SPEED) as emu:
        emu.setup()
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emu.airflow_connection())
        yield emu


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider's delays made small (its documented knobs are class attributes and static methods)."""
    monkeypatch.setattr(BatchClientHook, "DEFAULT_DELAY_MIN", 0)
    monkeypatch.setattr(BatchClientHook, "DEFAULT_DELAY_MAX", POLL)
    monkeypatch.setattr(BatchClientHook, "add_jitter", staticmethod(lambda delay, width=1, minima=0: POLL))
    monkeypatch.setattr(BatchClientHook, "exponential_delay", staticmethod(lambda tries: POLL))
    # BatchWaitersHook.wait_for_job sets each waiter's max_attempts to sys.maxsize
    monkeypatch.setattr(batch_waiters_module, "sys", SimpleNamespace(maxsize=MAX_POLLS))


@pytest.fixture
def client_hook(fast_emulator: BatchEmulator, quick_polls: None) -> Iterator[BatchClientHook]:
    hook = BatchClientHook(aws_conn_id="aws_default", max_retries=MAX_POLLS, status_retries=3)
    yield hook
    hook.conn.close()


@pytest.fixture
def fast_client(fast_emulator: BatchEmulator) -> Iterator[Any]:
    client = fast_emulator.client()
    client.register_job_definition(
        jobDefinitionName="logged",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["true"],
            "resourceRequirements": RESOURCES,
            "logConfiguration": AWSLOGS,
        },
    )
    yield client
    client.close()


def _log_info(stream: str, group: str = LOG_GROUP) -> dict[str, str]:
    return {"awslogs_stream_name": stream, "awslogs_group": group, "awslogs_region": REGION}


def test_client_hook_container_job(client_hook: BatchClientHook, fast_client: Any) -> None:
    job = fast_client.submit_job(jobName="hook-container", jobQueue="queue", jobDefinition="logged")["jobId"]
    client_hook.wait_for_job(job, delay=0)
    assert client_hook.check_job_success(job)
    detail = _describe(fast_client, job)
    stream = detail["attempts"][-1]["container"]["logStreamName"]
    assert detail["container"]["logStreamName"] == stream
    assert client_hook.get_job_all_awslogs_info(job) == [_log_info(stream)]


def test_client_hook_array_job(client_hook: BatchClientHook, fast_client: Any, fast_emulator: BatchEmulator) -> None:
    fast_emulator.add_outcome({"attempts": [{"exit_code": 3, "reason": "bad input"}]}, name="hook-array", indices=[1])
    parent = fast_client.submit_job(
        jobName="hook-array", jobQueue="queue", jobDefinition="logged", arrayProperties={"size": 3}
    )["jobId"]
    client_hook.wait_for_job(parent, delay=0)
    with pytest.raises(AirflowException, match=rf"AWS Batch job \({parent}\) failed"):
        client_hook.check_job_success(parent)
    detail = _describe(fast_client, parent)
    assert detail["arrayProperties"]["statusSummary"]["FAILED"] == 1
    assert client_hook.get_job_all_awslogs_info(parent) == []  # the parent never runs a container: no stream
    for index in range(3):
        child = _describe(fast_client, f"{parent}:{index}")
        assert child["status"] == ("FAILED" if index == 1 else "SUCCEEDED")
        stream = child["attempts"][-1]["container"]["logStreamName"]
        assert client_hook.get_job_all_awslogs_info(child["jobId"]) == [_log_info(stream)]
    assert _describe(fast_client, f"{parent}:1")["container"]["exitCode"] == 3


def test_client_hook_multi_node_job(client_hook: BatchClientHook, fast_client: Any) -> None:
    container = {
        "image": "busybox",
        "command": ["true"],
        "resourceRequirements": RESOURCES,
        "logConfiguration": AWSLOGS,
    }
    _mnp_definition(fast_client, "hook-mnp", [{"targetNodes": "0:", "container": container}])
    job = fast_client.submit_job(jobName="hook-mnp", jobQueue="queue", jobDefinition="hook-mnp")["jobId"]
    client_hook.wait_for_job(job, delay=0)
    assert client_hook.check_job_success(job)
    detail = _describe(fast_client, job)
    assert detail["nodeProperties"]["numNodes"] == 3
    streams = {a["container"]["logStreamName"] for a in detail["attempts"]}
    infos = client_hook.get_job_all_awslogs_info(job)
    assert infos and all(i["awslogs_group"] == LOG_GROUP for i in infos)
    assert {i["awslogs_stream_name"] for i in infos} == streams


def test_waiters_hook_with_its_default_config(
    fast_emulator: BatchEmulator, fast_client: Any, quick_polls: None
) -> None:
    hook = BatchWaitersHook(aws_conn_id="aws_default")
    try:
        assert hook.waiter_config == hook.default_config
        assert sorted(hook.list_waiters()) == ["JobComplete", "JobExists", "JobRunning"]
        fast_emulator.add_outcome({"attempts": [{"exit_code": 1, "reason": "boom"}]}, name="waiter-bad")
        ok = fast_client.submit_job(jobName="waiter-ok", jobQueue="queue", jobDefinition="jobdef")["jobId"]
        bad = fast_client.submit_job(jobName="waiter-bad", jobQueue="queue", jobDefinition="jobdef")["jobId"]
        hook.wait_for_job(ok, delay=0)
        assert _describe(fast_client, ok)["status"] == "SUCCEEDED"
        with pytest.raises(AirflowException, match="Waiter JobComplete failed"):
            hook.wait_for_job(bad, delay=0)
        assert _describe(fast_client, bad)["status"] == "FAILED"
    finally:
        hook.conn.close()


@contextlib.contextmanager
def _ticking(emu: BatchEmulator, step: float = 0.5, every: float = 0.005) -> Iterator[None]:
    """Advance the manual clock from a thread (``step`` emulated seconds every ``every`` wall seconds)."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            emu.advance(step)

    thread = threading.Thread(target=tick, name="emulator-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


async def _trigger_events(job_id: str, conn_id: str) -> list[dict[str, Any]]:
    trigger = BatchJobTrigger(job_id=job_id, aws_conn_id=conn_id, waiter_delay=POLL, waiter_max_attempts=MAX_POLLS)  # type: ignore[arg-type]
    try:
        return [event.payload async for event in trigger.run()]
    except AirflowException as err:  # the amazon provider before 9.25 raises a failed job instead of yielding one
        return [{"status": "error", "job_id": job_id, "message": str(err)}]


async def test_batch_job_trigger_runs_to_its_end(batch_emulator: BatchEmulator, batch_aws_conn: str) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1, "reason": "boom"}]}, name="trigger-bad")
    ok = batch_emulator.submit("trigger-ok")
    bad = batch_emulator.submit("trigger-bad")
    array = batch_emulator.submit("trigger-array", arrayProperties={"size": 2})
    with _ticking(batch_emulator):
        ok_events, bad_events, array_events = await asyncio.wait_for(
            asyncio.gather(*(_trigger_events(j, batch_aws_conn) for j in (ok, bad, array))), timeout=30
        )
    assert ok_events == [{"status": "success", "job_id": ok}]
    assert array_events == [{"status": "success", "job_id": array}]
    assert len(bad_events) == 1 and bad_events[0]["status"] == "error" and bad_events[0]["job_id"] == bad
    assert bad_events[0]["message"].startswith(f"Failure while running batch job {bad}: ['FAILED']")


# ---------------------------------------------------------------------------------------------------------------
# botocore's examples-1.json replayed: full answers
# ---------------------------------------------------------------------------------------------------------------


def _example(operation: str, example_id_part: str) -> dict[str, Any]:
    return next(e for e in EXAMPLES[operation] if example_id_part in e["id"])


def _only_members(data: dict[str, Any], shape: Shape) -> dict[str, Any]:
    assert isinstance(shape, StructureShape)
    return {k: v for k, v in data.items() if k in shape.members}


def _create_compute_environment(client: Any, name: str) -> None:
    """A compute environment as the CreateComputeEnvironment examples make it (theirs when they make ``name``)."""
    made = [e["input"] for e in EXAMPLES["CreateComputeEnvironment"] if e["input"]["computeEnvironmentName"] == name]
    body = made[0] if made else {**_example("CreateComputeEnvironment", "managed-ec2-compute")["input"]}
    client.create_compute_environment(**{**body, "computeEnvironmentName": name})


def _create_queue(client: Any, name: str, compute_environments: list[str] | None = None, **extra: Any) -> None:
    names = compute_environments or [f"{name}-ce"]
    for ce in names:
        _create_compute_environment(client, ce)
    order = [{"order": i + 1, "computeEnvironment": ce} for i, ce in enumerate(names)]
    client.create_job_queue(
        **{"priority": 1, "state": "ENABLED", **extra, "jobQueueName": name, "computeEnvironmentOrder": order}
    )


def _register(client: Any, name: str, container: dict[str, Any] | None = None) -> None:
    props = container or {"image": "busybox", "command": ["sleep", "60"], "resourceRequirements": RESOURCES}
    # the example answers' empty lists are the service's defaults: leave them out, so the check sees them filled in
    props = {k: v for k, v in props.items() if v != []}
    client.register_job_definition(jobDefinitionName=name, type="container", containerProperties=props)


def _prepare(operation: str, example: dict[str, Any], emu: BatchEmulator, client: Any) -> dict[str, Any]:
    """Make what the example's request refers to; the request to send (job ids swapped for the emulator's)."""
    request = dict(example.get("input") or {})
    output = example.get("output") or {}
    if operation == "CreateJobQueue":
        for entry in request["computeEnvironmentOrder"]:
            _create_compute_environment(client, entry["computeEnvironment"])
    elif operation == "DescribeComputeEnvironments":
        shape = SERVICE.operation_model("CreateComputeEnvironment").input_shape
        for env in output["computeEnvironments"]:
            client.create_compute_environment(**_only_members(env, shape))
    elif operation == "DescribeJobQueues":
        for queue in output["jobQueues"]:
            ces = [o["computeEnvironment"].rsplit("/", 1)[-1] for o in queue["computeEnvironmentOrder"]]
            _create_queue(client, queue["jobQueueName"], ces, priority=queue["priority"], state=queue["state"])
    elif operation == "DescribeJobDefinitions":
        for definition in output["jobDefinitions"]:
            _register(client, definition["jobDefinitionName"], definition["containerProperties"])
    elif operation == "SubmitJob":
        _create_queue(client, request["jobQueue"])
        _register(client, request["jobDefinition"])
    elif operation == "ListJobs":
        _create_queue(client, request["jobQueue"])
        _register(client, "sleep60")
        job = client.submit_job(
            jobName=output["jobSummaryList"][0]["jobName"], jobQueue=request["jobQueue"], jobDefinition="sleep60"
        )
        _advance_to(emu, client, job["jobId"], request.get("jobStatus", "RUNNING"))
    elif operation == "DescribeJobs":
        (wanted,) = output["jobs"]
        _create_queue(client, wanted["jobQueue"].rsplit("/", 1)[-1])
        shape = SERVICE.shape_for("ContainerProperties")
        _register(client, wanted["jobDefinition"], _only_members(wanted["container"], shape))
        job = client.submit_job(
            jobName=wanted["jobName"],
            jobQueue=wanted["jobQueue"].rsplit("/", 1)[-1],
            jobDefinition=wanted["jobDefinition"],
        )
        _advance_to(emu, client, job["jobId"], wanted["status"])
        request["jobs"] = [job["jobId"]]
    elif operation in ("CancelJob", "TerminateJob"):
        _create_queue(client, "queue")
        _register(client, "sleep60")
        job = client.submit_job(jobName="to-stop", jobQueue="queue", jobDefinition="sleep60")["jobId"]
        if operation == "TerminateJob":
            _advance_to(emu, client, job, "RUNNING")
        request["jobId"] = job
    return request


def _missing_keys(expected: Any, actual: Any, shape: Shape | None, path: str) -> list[str]:
    """Paths of the example's keys that the answer lacks. Structures: every key; lists: the first elements; maps
    (tags, parameters): the values are the caller's data, not checked."""
    if isinstance(shape, StructureShape):
        if not isinstance(actual, dict):
            return [f"{path} (not an object: {actual!r})"]
        missing = []
        for key, value in expected.items():
            if key not in actual:
                missing.append(f"{path}.{key}")
            else:
                missing += _missing_keys(value, actual[key], shape.members[key], f"{path}.{key}")
        return missing
    if isinstance(shape, ListShape):
        if not isinstance(actual, list):
            return [f"{path} (not a list: {actual!r})"]
        if expected and not actual:
            return [f"{path}[0] (empty list)"]
        if expected:
            return _missing_keys(expected[0], actual[0], shape.member, f"{path}[0]")
    return []


REPLAYED = [(operation, example) for operation in SERVED for example in EXAMPLES.get(operation, [])]


@pytest.mark.parametrize(("operation", "example"), REPLAYED, ids=[e["id"] for _, e in REPLAYED])
def test_botocore_example_answered_in_full(operation: str, example: dict[str, Any]) -> None:
    with BatchEmulator() as emu:  # only what the example makes: no fixture queue or definition listed first
        client = emu.client()
        request = _prepare(operation, example, emu, client)
        answer = getattr(client, xform_name(operation))(**request)
        client.close()
    shape = SERVICE.operation_model(operation).output_shape
    missing = _missing_keys(example.get("output") or {}, answer, shape, operation)
    answer.pop("ResponseMetadata", None)
    assert not missing, f"missing from the emulator's answer: {missing}\nanswer: {json.dumps(answer, indent=1)}"


def test_every_served_operation_has_a_replayed_example() -> None:
    assert {operation for operation, _ in REPLAYED} == set(SERVED)


# ---------------------------------------------------------------------------------------------------------------
# Gaps reported by an earlier probe: what the real service answers
# ---------------------------------------------------------------------------------------------------------------


class Expectations:
    """Every unmet expectation of a test, so that one run names them all rather than the first."""

    def __init__(self) -> None:
        self.unmet: list[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        if not ok:
            self.unmet.append(what)

    def check(self) -> None:
        assert not self.unmet, "unmet expectations:\n- " + "\n- ".join(self.unmet)


def _lists(container: dict[str, Any]) -> dict[str, str]:
    return {k: type(container.get(k)).__name__ for k in LIST_FIELDS if not isinstance(container.get(k), list)}


def test_describe_jobs_container_lists_and_container_instance(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    expect = Expectations()
    job = batch_client.submit_job(jobName="shapes", jobQueue="queue", jobDefinition="jobdef")["jobId"]
    submitted = _describe(batch_client, job)["container"]
    expect(not _lists(submitted), f"SUBMITTED: container fields that are not lists: {_lists(submitted)}")
    running = _advance_to(batch_emulator, batch_client, job, "RUNNING")["container"]
    expect(not _lists(running), f"RUNNING: container fields that are not lists: {_lists(running)}")
    instance = running.get("containerInstanceArn")
    expect(
        str(instance).startswith(f"arn:aws:ecs:{REGION}:"),
        f"RUNNING: container.containerInstanceArn is {instance!r}, not an ECS container-instance ARN",
    )
    done = _advance_to(batch_emulator, batch_client, job, "SUCCEEDED")["container"]
    expect(not _lists(done), f"SUCCEEDED: container fields that are not lists: {_lists(done)}")
    expect(
        instance is not None and done.get("containerInstanceArn") == instance,
        f"SUCCEEDED: containerInstanceArn {done.get('containerInstanceArn')!r}, RUNNING had {instance!r}",
    )
    expect.check()


def test_describe_job_queues_names_compute_environments_by_arn(batch_client: Any) -> None:
    expect = Expectations()
    ce_arn = batch_client.describe_compute_environments(computeEnvironments=["ce"])["computeEnvironments"][0][
        "computeEnvironmentArn"
    ]
    batch_client.create_job_queue(
        jobQueueName="by-name", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}]
    )
    for name in ("queue", "by-name"):
        (queue,) = batch_client.describe_job_queues(jobQueues=[name])["jobQueues"]
        order = [o["computeEnvironment"] for o in queue["computeEnvironmentOrder"]]
        expect(order == [ce_arn], f"{name}: computeEnvironmentOrder[].computeEnvironment is {order}, not [{ce_arn}]")
        reason = queue.get("statusReason")
        expect(isinstance(reason, str) and bool(reason), f"{name}: statusReason is {reason!r}")
    expect.check()


def test_compute_environments_full_and_managed_requires_compute_resources(batch_client: Any) -> None:
    expect = Expectations()
    (ce,) = batch_client.describe_compute_environments(computeEnvironments=["ce"])["computeEnvironments"]
    cluster, reason = ce.get("ecsClusterArn"), ce.get("statusReason")
    expect(str(cluster).startswith(f"arn:aws:ecs:{REGION}:"), f"ce: ecsClusterArn is {cluster!r}")
    expect(isinstance(reason, str) and bool(reason), f"ce: statusReason is {reason!r}")
    expect(
        ce["type"] == "MANAGED" and "computeResources" in ce,
        f"the fixture's MANAGED compute environment 'ce' has no computeResources: {sorted(ce)}",
    )
    try:
        batch_client.create_compute_environment(computeEnvironmentName="bare", type="MANAGED")
        expect(False, "CreateComputeEnvironment MANAGED without computeResources was accepted")
    except ClientError as err:
        code = err.response["Error"]["Code"]
        expect(code == "ClientException", f"MANAGED without computeResources: {code}, not ClientException")
    listed = {c["computeEnvironmentName"] for c in batch_client.describe_compute_environments()["computeEnvironments"]}
    expect("bare" not in listed, "the rejected compute environment 'bare' is listed")
    batch_client.create_compute_environment(computeEnvironmentName="own-hosts", type="UNMANAGED")  # needs none
    expect.check()


def test_job_definitions_container_defaults(batch_client: Any) -> None:
    expect = Expectations()
    batch_client.register_job_definition(
        jobDefinitionName="plain",
        type="container",
        containerProperties={"image": "busybox", "command": ["true"], "resourceRequirements": RESOURCES},
    )
    for name in ("plain", "jobdef"):
        (definition,) = batch_client.describe_job_definitions(jobDefinitionName=name)["jobDefinitions"]
        props = definition["containerProperties"]
        wrong = {k: props.get(k) for k in LIST_FIELDS if props.get(k) != []}
        expect(not wrong, f"{name}: containerProperties fields not [] by default: {wrong}")
    expect.check()


def test_one_filter_with_two_values_is_rejected(batch_client: Any) -> None:
    err = _client_error(batch_client.list_jobs, jobQueue="queue", filters=[{"name": "JOB_NAME", "values": ["a", "b"]}])
    assert err.response["Error"]["Message"] == "Filter cannot take more than one value."


def test_every_response_has_a_request_id(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    job = batch_client.submit_job(jobName="rid", jobQueue="queue", jobDefinition="jobdef")
    other = batch_client.submit_job(jobName="rid2", jobQueue="queue", jobDefinition="jobdef")
    answers: dict[str, dict[str, Any]] = {
        "SubmitJob": job,
        "ListJobs": batch_client.list_jobs(jobQueue="queue", jobStatus="SUBMITTED"),
        "DescribeJobs": batch_client.describe_jobs(jobs=[job["jobId"]]),
        "CancelJob": batch_client.cancel_job(jobId=job["jobId"], reason="r"),
        "TerminateJob": batch_client.terminate_job(jobId=other["jobId"], reason="r"),
        "CreateComputeEnvironment": batch_client.create_compute_environment(
            computeEnvironmentName="rid-ce", type="UNMANAGED"
        ),
        "DescribeComputeEnvironments": batch_client.describe_compute_environments(),
        "CreateJobQueue": batch_client.create_job_queue(
            jobQueueName="rid-q", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce"}]
        ),
        "DescribeJobQueues": batch_client.describe_job_queues(),
        "RegisterJobDefinition": batch_client.register_job_definition(
            jobDefinitionName="rid-def", type="container", containerProperties={"image": "busybox"}
        ),
        "DescribeJobDefinitions": batch_client.describe_job_definitions(),
    }
    with pytest.raises(ClientError) as err:
        batch_client.list_jobs(jobQueue="no-such-queue")
    answers["ListJobs (error)"] = err.value.response
    request_ids = {op: answer["ResponseMetadata"].get("RequestId") for op, answer in answers.items()}
    without = [op for op, rid in request_ids.items() if not rid]
    assert not without, f"answers without ResponseMetadata.RequestId (x-amzn-RequestId header): {without}"
    assert len(set(request_ids.values())) == len(request_ids), request_ids  # one per request


def test_multi_node_node_jobs_carry_their_node_range_container(
    batch_emulator: BatchEmulator, batch_client: Any, batch_aws_conn: str
) -> None:
    expect = Expectations()
    workers_log = {"logDriver": "awslogs", "options": {"awslogs-group": "/batch/workers"}}
    main = {"image": "main:1", "command": ["mpirun"], "resourceRequirements": RESOURCES}
    worker = {
        "image": "worker:1",
        "command": ["worker"],
        "resourceRequirements": RESOURCES,
        "logConfiguration": workers_log,
    }
    ranges = [{"targetNodes": "0", "container": main}, {"targetNodes": "1:", "container": worker}]
    _mnp_definition(batch_client, "ranges", ranges)
    job = batch_client.submit_job(jobName="mnp", jobQueue="queue", jobDefinition="ranges")["jobId"]
    _advance_to(batch_emulator, batch_client, job, "SUCCEEDED")
    nodes = {d["jobId"]: d for d in batch_client.describe_jobs(jobs=[f"{job}#{n}" for n in range(3)])["jobs"]}
    assert sorted(nodes) == [f"{job}#{n}" for n in range(3)]
    for n, wanted in ((0, main), (1, worker), (2, worker)):
        container = nodes[f"{job}#{n}"].get("container", {})
        for key in ("image", "command", "logConfiguration"):
            expect(
                container.get(key) == wanted.get(key),
                f"node #{n}: container.{key} is {container.get(key)!r}, its node range has {wanted.get(key)!r}",
            )
    # what that means for the amazon provider: a node's log info names its range's log group
    hook = BatchClientHook(aws_conn_id=batch_aws_conn, status_retries=1)
    try:
        stream = nodes[f"{job}#2"]["attempts"][-1]["container"]["logStreamName"]
        infos = hook.get_job_all_awslogs_info(f"{job}#2")
        wanted_infos = [_log_info(stream, "/batch/workers")]
        expect(
            infos == wanted_infos, f"BatchClientHook.get_job_all_awslogs_info(node #2) = {infos}, not {wanted_infos}"
        )
    finally:
        hook.conn.close()
    expect.check()


def test_array_parent_cancelled_while_submitted_never_runs_its_children(
    batch_emulator: BatchEmulator, batch_client: Any
) -> None:
    expect = Expectations()
    parent = batch_client.submit_job(
        jobName="fan", jobQueue="queue", jobDefinition="jobdef", arrayProperties={"size": 3}
    )["jobId"]
    assert _describe(batch_client, parent)["status"] == "SUBMITTED"
    batch_client.cancel_job(jobId=parent, reason="stop the fan-out")
    batch_emulator.advance(300)
    detail = _describe(batch_client, parent)
    outcome = (detail["status"], detail.get("statusReason"))
    expect(outcome == ("FAILED", "stop the fan-out"), f"parent (status, statusReason) is {outcome}")
    listed = [
        (c["jobId"], c["status"])
        for status in STATUSES
        for c in batch_client.list_jobs(arrayJobId=parent, jobStatus=status)["jobSummaryList"]
    ]
    expect(all(status == "FAILED" for _, status in listed), f"children listed: {listed}")
    children = batch_client.describe_jobs(jobs=[f"{parent}:{i}" for i in range(3)])["jobs"]
    ran = [
        (c["jobId"], c["status"], len(c.get("attempts", [])))
        for c in children
        if c.get("startedAt") or c.get("attempts")
    ]
    expect(not ran, f"children that ran (id, status, attempts): {ran}")
    expect.check()


def test_plain_job_cancelled_while_submitted_never_runs(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    """The array case above, for a plain job: the baseline it is compared with."""
    job = batch_client.submit_job(jobName="solo", jobQueue="queue", jobDefinition="jobdef")["jobId"]
    batch_client.cancel_job(jobId=job, reason="not today")
    batch_emulator.advance(300)
    detail = _describe(batch_client, job)
    assert (detail["status"], detail.get("statusReason")) == ("FAILED", "not today")
    assert not detail.get("attempts") and "startedAt" not in detail
