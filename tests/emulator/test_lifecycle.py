"""Lifecycles, retries, shapes, faults and counters of the emulator, and the amazon provider running against it."""

from __future__ import annotations

import socket
from typing import Any
from unittest import mock

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.testing.scenario import definition_body


def _status(client: Any, job_id: str) -> str:
    return client.describe_jobs(jobs=[job_id])["jobs"][0]["status"]


def test_lifecycle_on_manual_clock(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    job = batch_emulator.submit("a")
    seen = []
    for _ in range(18):
        seen.append(_status(batch_client, job))
        batch_emulator.advance(1)
    # 1 s SUBMITTED, 1 s PENDING, 2 s RUNNABLE, 2 s STARTING, 10 s RUNNING, then SUCCEEDED
    assert seen == ["SUBMITTED", "PENDING", "RUNNABLE", "RUNNABLE", "STARTING", "STARTING", *["RUNNING"] * 10,
                    "SUCCEEDED", "SUCCEEDED"]  # fmt: skip


def test_retries_follow_evaluate_on_exit(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.add_outcome(
        {"attempts": [{"exit_code": 137, "reason": "OutOfMemoryError"}, {"exit_code": 1}, {"exit_code": 0}]}, name="r*"
    )
    strategy = {
        "attempts": 5,
        "evaluateOnExit": [{"onExitCode": "137", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}],
    }
    job = batch_emulator.submit("retry-me", retryStrategy=strategy)
    batch_emulator.advance(600)
    (detail,) = batch_client.describe_jobs(jobs=[job])["jobs"]
    # 137 matched RETRY; exit 1 matched the catch-all EXIT: two attempts, FAILED
    assert [a["container"].get("exitCode") for a in detail["attempts"]] == [137, 1]
    assert detail["attempts"][0]["container"]["reason"] == "OutOfMemoryError"
    assert detail["status"] == "FAILED"
    plain = batch_emulator.submit("rerun", retryStrategy={"attempts": 3})  # no rule: retry while attempts remain
    batch_emulator.advance(600)
    (detail,) = batch_client.describe_jobs(jobs=[plain])["jobs"]
    assert [a["container"]["exitCode"] for a in detail["attempts"]] == [137, 1, 0]
    assert detail["status"] == "SUCCEEDED"


def test_ecs_and_eks_attempt_shapes(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.model.register_job_definition(definition_body("ecsdef", "ecs"))
    batch_emulator.model.register_job_definition(definition_body("eksdef", "eks"))
    batch_emulator.add_outcome({"attempts": [{"exit_code": 3, "reason": "bad"}]}, definition="e*def")
    ecs = batch_emulator.submit("e1", definition="ecsdef")
    eks = batch_emulator.submit("e2", definition="eksdef")
    batch_emulator.advance(60)
    ecs_detail, eks_detail = batch_client.describe_jobs(jobs=[ecs, eks])["jobs"]
    assert ecs_detail["attempts"][0]["taskProperties"][0]["containers"][0]["exitCode"] == 3
    assert eks_detail["eksAttempts"][0]["containers"][0]["exitCode"] == 3
    assert "attempts" not in eks_detail or eks_detail["attempts"] == []


def test_stuck_runnable_and_cancel_terminate(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.add_outcome({"stuck_runnable": True}, name="stuck")
    stuck = batch_emulator.submit("stuck")
    running = batch_emulator.submit("long")
    batch_emulator.advance(3600)
    (detail,) = batch_client.describe_jobs(jobs=[stuck])["jobs"]
    assert detail["status"] == "RUNNABLE" and detail["statusReason"].startswith("CAPACITY:")
    batch_client.cancel_job(jobId=stuck, reason="giving up")
    (detail,) = batch_client.describe_jobs(jobs=[stuck])["jobs"]
    assert (detail["status"], detail["statusReason"], detail["isCancelled"]) == ("FAILED", "giving up", True)
    assert _status(batch_client, running) == "SUCCEEDED"
    long_job = batch_emulator.submit("long2")
    batch_emulator.advance(8)
    batch_client.terminate_job(jobId=long_job, reason="stop it")
    (detail,) = batch_client.describe_jobs(jobs=[long_job])["jobs"]
    assert detail["status"] == "FAILED" and detail["isTerminated"] and len(detail["attempts"]) == 1


def test_depends_on(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1}]}, name="bad")
    first = batch_emulator.submit("first")
    bad = batch_emulator.submit("bad")
    after_first = batch_emulator.submit("second", dependsOn=[{"jobId": first}])
    after_bad = batch_emulator.submit("third", dependsOn=[{"jobId": bad}])
    batch_emulator.advance(10)
    assert _status(batch_client, after_first) == "PENDING"
    batch_emulator.advance(60)
    assert _status(batch_client, after_first) == "SUCCEEDED"
    (detail,) = batch_client.describe_jobs(jobs=[after_bad])["jobs"]
    assert detail["status"] == "FAILED" and "Dependent Job" in detail["statusReason"]


def test_faults_throttle_server_drop_and_counters(batch_emulator: BatchEmulator) -> None:
    client = batch_emulator.client(config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    batch_emulator.inject("ListJobs", "throttle", count=1)
    batch_emulator.inject("ListJobs", "server", count=1)
    batch_emulator.inject("DescribeJobs", "throttling", count=1)
    with pytest.raises(ClientError) as err:
        client.list_jobs(jobQueue="queue", jobStatus="RUNNING")
    assert err.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    with pytest.raises(ClientError) as err:
        client.list_jobs(jobQueue="queue", jobStatus="RUNNING")
    assert err.value.response["Error"]["Code"] == "ServerException"
    with pytest.raises(ClientError) as err:
        client.describe_jobs(jobs=["x"])
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    client.list_jobs(jobQueue="queue", jobStatus="RUNNING")  # the faults were used up
    batch_emulator.inject("DescribeJobs", "drop", count=1)
    with pytest.raises(ConnectionClosedError):
        client.describe_jobs(jobs=["x"])
    assert batch_emulator.calls == {"ListJobs": 3, "DescribeJobs": 2}
    assert batch_emulator.faults.faulted == {"ListJobs": 2, "DescribeJobs": 2}
    # the default client (standard retries) rides over a throttled call
    batch_emulator.inject("ListJobs", "throttle", count=1)
    batch_emulator.client().list_jobs(jobQueue="queue", jobStatus="RUNNING")


def test_connections_stay_open_between_calls_and_close_with_the_emulator() -> None:
    """Like an AWS endpoint, one connection serves call after call; stopping the emulator closes it."""
    connects: list[Any] = []
    real_connect = socket.socket.connect

    def counting_connect(sock: socket.socket, address: Any) -> None:
        connects.append(address)
        real_connect(sock, address)

    no_retry = Config(retries={"mode": "standard", "total_max_attempts": 1})
    with BatchEmulator() as emu:
        emu.setup()
        client = emu.client(config=no_retry)
        with mock.patch.object(socket.socket, "connect", counting_connect):
            for _ in range(10):
                client.list_jobs(jobQueue="queue", jobStatus="RUNNING")
            assert len(connects) == 1
            emu.stop()
            with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
                client.list_jobs(jobQueue="queue", jobStatus="RUNNING")  # the pooled connection is gone too
            emu.start()
            client.list_jobs(jobQueue="queue", jobStatus="RUNNING")
            assert len(connects) >= 2


def test_rate_faults_are_deterministic_under_a_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        with BatchEmulator(seed=seed) as emu:
            emu.setup()
            client = emu.client(config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
            emu.inject("*", "server", rate=0.5)
            out = []
            for _ in range(20):
                try:
                    client.list_jobs(jobQueue="queue", jobStatus="RUNNING")
                    out.append(True)
                except ClientError:
                    out.append(False)
            return out

    first = pattern(7)
    assert first == pattern(7) and 3 < first.count(False) < 17


def test_control_api_over_http(batch_emulator: BatchEmulator) -> None:
    import requests

    base = batch_emulator.endpoint_url + "/_emulator"
    before = batch_emulator.now_ms()
    assert requests.post(base + "/advance", json={"seconds": 5}, timeout=5).json()["now_ms"] == before + 5000
    batch_emulator.client().list_jobs(jobQueue="queue", jobStatus="RUNNING")
    assert requests.get(base + "/stats", timeout=5).json()["calls"] == {"ListJobs": 1}
    assert requests.get(base + "/log", timeout=5).json()["log"][0]["operation"] == "ListJobs"


def test_scenario_file_submits_over_time(tmp_path: Any) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "queues: [nightly]\n"
        "job_definitions: [{name: etl}]\n"
        "outcomes: [{match: {name: etl-b}, attempts: [{exit_code: 4, reason: boom}]}]\n"
        "submit:\n"
        "  - {at: 0, name: etl-a, queue: nightly, definition: etl}\n"
        "  - {at: 30, name: etl-b, queue: nightly, definition: etl, depends_on: [etl-a]}\n"
        "  - {at: 30, name: part, queue: nightly, definition: etl, count: 2}\n"
    )
    with BatchEmulator(scenario=scenario) as emu:
        client = emu.client()
        flt = [{"name": "AFTER_CREATED_AT", "values": ["0"]}]
        assert [j["jobName"] for j in client.list_jobs(jobQueue="nightly", filters=flt)["jobSummaryList"]] == ["etl-a"]
        emu.advance(120)
        jobs = {j["jobName"]: j for j in client.list_jobs(jobQueue="nightly", filters=flt)["jobSummaryList"]}
        assert sorted(jobs) == ["etl-a", "etl-b", "part-0", "part-1"]
        assert jobs["etl-b"]["status"] == "FAILED" and jobs["etl-b"]["container"]["exitCode"] == 4


def test_binding_elsewhere_warns() -> None:
    with pytest.warns(UserWarning, match="reachable from other machines"):
        BatchEmulator(host="0.0.0.0")  # never started


def test_amazon_batch_operator_runs_against_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
    from airflow.providers.amazon.aws.operators.batch import BatchOperator

    monkeypatch.setattr(BatchClientHook, "delay", staticmethod(lambda delay=None: None))
    with BatchEmulator(speed=200) as emu:
        emu.setup()
        emu.add_outcome({"attempts": [{"exit_code": 9, "reason": "boom"}]}, name="bad")
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emu.airflow_connection())
        context = mock.MagicMock()
        good = BatchOperator(task_id="good", job_name="good", job_queue="queue", job_definition="jobdef")
        assert good.execute(context)
        assert emu.model.status_at(emu.model.jobs[good.job_id], emu.now_ms()) == "SUCCEEDED"
        bad = BatchOperator(task_id="bad", job_name="bad", job_queue="queue", job_definition="jobdef")
        with pytest.raises(Exception, match="FAILED"):
            bad.execute(context)


def test_amazon_batch_sensor_runs_against_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.amazon.aws.sensors.batch import BatchSensor

    with BatchEmulator() as emu:
        emu.setup()
        emu.add_outcome({"attempts": [{"exit_code": 9}]}, name="bad")
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emu.airflow_connection())
        good, bad = emu.submit("good"), emu.submit("bad")
        context = mock.MagicMock()
        assert BatchSensor(task_id="g", job_id=good).poke(context) is False  # still SUBMITTED
        emu.advance(60)
        assert BatchSensor(task_id="g", job_id=good).poke(context) is True
        with pytest.raises(Exception, match="failed"):
            BatchSensor(task_id="b", job_id=bad).poke(context)
