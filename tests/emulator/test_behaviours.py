"""The service's awkward behaviours, each switch on and off, through boto3; and the emulator's independence.

What the service is documented to do and what is our best reading of it is said in
``airflow_batch_jobs/testing/behaviours.py`` and the README's emulator section.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_batch_jobs.testing import BatchEmulator, Behaviours
from airflow_batch_jobs.testing.clock import ManualClock
from airflow_batch_jobs.testing.scenario import definition_body

AFTER_0 = [{"name": "AFTER_CREATED_AT", "values": ["0"]}]


def _statuses_over(emu: BatchEmulator, job_id: str, seconds: int, step: float = 1) -> list[str]:
    client = emu.client()
    seen: list[str] = []
    for _ in range(int(seconds / step)):
        jobs = client.describe_jobs(jobs=[job_id])["jobs"]
        status = jobs[0]["status"] if jobs else "<missing>"
        if not seen or seen[-1] != status:
            seen.append(status)
        emu.advance(step)
    return seen


@pytest.mark.parametrize("back_to_runnable", [True, False])
def test_a_retried_job_moves_back_to_runnable(back_to_runnable: bool) -> None:
    with BatchEmulator(behaviours={"retry_to_runnable": back_to_runnable}) as emu:
        emu.setup()
        emu.add_outcome({"attempts": [{"exit_code": 137, "reason": "OutOfMemoryError"}, {"exit_code": 0}]})
        job = emu.submit("retry", retryStrategy={"attempts": 2})
        seen = _statuses_over(emu, job, 60)
        running_twice = ["RUNNABLE", "STARTING", "RUNNING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
        assert seen == (["SUBMITTED", "PENDING", *running_twice] if back_to_runnable else
                        ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"])  # fmt: skip
        (detail,) = emu.client().describe_jobs(jobs=[job])["jobs"]
        assert [a["container"]["exitCode"] for a in detail["attempts"]] == [137, 0]


def test_a_retried_job_is_listed_runnable_again_with_its_first_attempt_in_the_summary() -> None:
    with BatchEmulator(profile="realistic") as emu:
        emu.setup()
        emu.add_outcome({"attempts": [{"exit_code": 1, "duration": 5}, {"exit_code": 0}]})
        job = emu.submit("retry", retryStrategy={"attempts": 2})
        emu.advance(1 + 1 + 2 + 2 + 5 + 0.5)  # submitted, pending, runnable, starting, first attempt (lag 3 s)
        client = emu.client()
        listed = client.list_jobs(jobQueue="queue", jobStatus="RUNNABLE")["jobSummaryList"]
        assert [j["jobId"] for j in listed] == [job]
        assert "startedAt" in listed[0]  # it ran already: the summary says so


def test_visibility_lag_hides_a_just_submitted_job() -> None:
    with BatchEmulator(behaviours={"visibility_lag_seconds": 5}) as emu:
        emu.setup()
        client = emu.client()
        job = client.submit_job(jobName="late", jobQueue="queue", jobDefinition="jobdef")["jobId"]
        assert client.describe_jobs(jobs=[job])["jobs"] == []
        assert client.list_jobs(jobQueue="queue", filters=AFTER_0)["jobSummaryList"] == []
        emu.advance(4.9)
        assert client.describe_jobs(jobs=[job])["jobs"] == []
        emu.advance(0.1)
        assert [j["jobId"] for j in client.describe_jobs(jobs=[job])["jobs"]] == [job]
        assert [j["jobId"] for j in client.list_jobs(jobQueue="queue", filters=AFTER_0)["jobSummaryList"]] == [job]


def test_without_the_lag_a_job_is_visible_at_once(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    job = batch_client.submit_job(jobName="now", jobQueue="queue", jobDefinition="jobdef")["jobId"]
    assert [j["jobId"] for j in batch_client.describe_jobs(jobs=[job])["jobs"]] == [job]


def test_array_status_summary_lags_its_children() -> None:
    with BatchEmulator(behaviours={"summary_lag_seconds": 8}) as emu:
        emu.setup()
        parent = emu.submit("fan", arrayProperties={"size": 3})
        client = emu.client()
        emu.advance(1 + 1 + 2 + 2 + 10)  # every child has just finished
        children = client.list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED")["jobSummaryList"]
        assert len(children) == 3
        (detail,) = client.describe_jobs(jobs=[parent])["jobs"]
        assert detail["status"] == "PENDING"
        assert detail["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 0
        assert detail["arrayProperties"]["statusSummaryLastUpdatedAt"] == emu.now_ms() - 8000
        emu.advance(8)
        (detail,) = client.describe_jobs(jobs=[parent])["jobs"]
        assert detail["status"] == "SUCCEEDED" and detail["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3


START_MS = 1_795_000_000_000


def _children_answers(read_early: bool) -> list[dict[str, Any]]:
    with BatchEmulator(clock=ManualClock(START_MS)) as emu:
        emu.setup()
        parent = emu.submit("fan", arrayProperties={"size": 4})
        client = emu.client()
        if read_early:
            for _ in range(6):
                client.describe_jobs(jobs=[parent])
                client.list_jobs(arrayJobId=parent, jobStatus="PENDING")
                emu.advance(0.5)
        else:
            emu.advance(3)
        emu.advance(30)
        return client.list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED")["jobSummaryList"]


def test_array_children_exist_from_their_parents_release_whoever_reads_what() -> None:
    assert _children_answers(read_early=True) == _children_answers(read_early=False)


def test_array_children_are_listed_before_anyone_described_the_parent(batch_emulator: BatchEmulator) -> None:
    parent = batch_emulator.submit("fan", arrayProperties={"size": 3})
    batch_emulator.advance(1.5)  # SUBMITTED 1 s, then PENDING: the children exist
    children = batch_emulator.client().list_jobs(arrayJobId=parent, jobStatus="PENDING")["jobSummaryList"]
    assert sorted(c["arrayProperties"]["index"] for c in children) == [0, 1, 2]
    assert {c["createdAt"] for c in children} == {batch_emulator.now_ms() - 500}


def test_a_cancelled_submitted_array_parent_never_runs_its_children(
    batch_emulator: BatchEmulator, batch_client: Any
) -> None:
    parent = batch_emulator.submit("fan", arrayProperties={"size": 3})
    batch_client.cancel_job(jobId=parent, reason="not tonight")
    batch_emulator.advance(120)
    (detail,) = batch_client.describe_jobs(jobs=[parent])["jobs"]
    assert (detail["status"], detail["statusReason"], detail.get("isCancelled")) == ("FAILED", "not tonight", True)
    for status in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED"):
        assert batch_client.list_jobs(arrayJobId=parent, jobStatus=status)["jobSummaryList"] == []


def test_an_array_parent_with_a_failed_dependency_fails_with_no_children(
    batch_emulator: BatchEmulator, batch_client: Any
) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 1}]}, name="upstream")
    upstream = batch_emulator.submit("upstream")
    parent = batch_emulator.submit("fan", arrayProperties={"size": 3}, dependsOn=[{"jobId": upstream}])
    batch_emulator.advance(120)
    (detail,) = batch_client.describe_jobs(jobs=[parent])["jobs"]
    assert detail["status"] == "FAILED" and detail["statusReason"] == f"Dependent Job {upstream} failed"
    assert "statusSummary" not in detail["arrayProperties"]
    assert batch_client.list_jobs(arrayJobId=parent, jobStatus="FAILED")["jobSummaryList"] == []


def test_cancel_while_waiting_for_a_retry_keeps_the_earlier_attempt(
    batch_emulator: BatchEmulator, batch_client: Any
) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 3, "duration": 5}, {"exit_code": 0}]})
    job = batch_emulator.submit("retry", retryStrategy={"attempts": 2})
    batch_emulator.advance(1 + 1 + 2 + 2 + 5 + 1)  # first attempt over, back in RUNNABLE
    batch_client.cancel_job(jobId=job, reason="operator gave up")
    batch_emulator.advance(60)
    (detail,) = batch_client.describe_jobs(jobs=[job])["jobs"]
    assert (detail["status"], detail["isCancelled"]) == ("FAILED", True)
    assert [a["container"]["exitCode"] for a in detail["attempts"]] == [3]
    (summary,) = batch_client.list_jobs(jobQueue="queue", filters=AFTER_0)["jobSummaryList"]
    assert summary["isCancelled"] is True and summary["statusReason"] == "operator gave up"


def test_multi_node_nodes_exist_from_the_start_with_their_node_range_container() -> None:
    with BatchEmulator() as emu:
        emu.setup()
        body = definition_body("mnp", "multinode", num_nodes=3)
        body["nodeProperties"]["nodeRangeProperties"] = [
            {"targetNodes": "0", "container": {"image": "main-image", "vcpus": 2, "memory": 256}},
            {
                "targetNodes": "1:",
                "container": {
                    "image": "worker-image",
                    "vcpus": 1,
                    "memory": 128,
                    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/mpi"}},
                },
            },
        ]
        emu.model.register_job_definition(body)
        job = emu.submit("mpi", definition="mnp")
        client = emu.client()
        emu.advance(1 + 1 + 1 + 2 + 0.5)  # submitted, pending, pending wait, runnable: the nodes are STARTING
        nodes = client.list_jobs(multiNodeJobId=job, jobStatus="STARTING")["jobSummaryList"]
        assert sorted(n["jobId"] for n in nodes) == [f"{job}#{i}" for i in range(3)]
        main, worker = client.describe_jobs(jobs=[f"{job}#0", f"{job}#2"])["jobs"]
        assert main["container"]["image"] == "main-image" and main["nodeDetails"]["isMainNode"] is True
        assert worker["container"]["image"] == "worker-image"
        assert worker["container"]["logConfiguration"]["options"]["awslogs-group"] == "/mpi"
        assert worker["container"]["environment"] == [] and worker["container"]["volumes"] == []


def _ecs_detail(seed: int, script: dict[str, Any]) -> dict[str, Any]:
    with BatchEmulator(profile="realistic", seed=seed, clock=ManualClock(START_MS)) as emu:
        emu.setup(definitions=("ecsdef",), kind="ecs")
        emu.add_outcome(script)
        job = emu.submit("ecs-job", definition="ecsdef")
        emu.advance(120)
        (detail,) = emu.client().describe_jobs(jobs=[job])["jobs"]
        return detail


def test_ecs_sidecar_is_stopped_with_137_or_143_and_the_essential_container_decides() -> None:
    detail = _ecs_detail(seed=1, script={"attempts": [{"exit_code": 0}]})
    (task,) = detail["attempts"][0]["taskProperties"]
    codes = {c["name"]: c["exitCode"] for c in task["containers"]}
    assert codes["main"] == 0 and codes["log-router"] in (137, 143)
    assert detail["status"] == "SUCCEEDED"
    essential = {
        c["name"]: c.get("essential", True) for c in detail["ecsProperties"]["taskProperties"][0]["containers"]
    }
    assert essential == {"main": True, "log-router": False}
    stops = {_ecs_detail(seed, {"attempts": [{"exit_code": 0}]})["attempts"][0]["taskProperties"][0]["containers"][1]
             ["exitCode"] for seed in range(8)}  # fmt: skip
    assert stops == {137, 143}  # the seed picks the signal
    assert _ecs_detail(seed=1, script={"attempts": [{"exit_code": 0}]}) == detail  # deterministic under the seed


def test_ecs_scripted_sidecar_failure_does_not_fail_the_job() -> None:
    detail = _ecs_detail(seed=0, script={"attempts": [{"exit_code": 0, "containers": {"log-router": 1}}]})
    codes = [c["exitCode"] for c in detail["attempts"][0]["taskProperties"][0]["containers"]]
    assert codes == [0, 1] and detail["status"] == "SUCCEEDED"


def test_eks_attempts_carry_init_containers_and_a_failing_init_fails_the_attempt() -> None:
    with BatchEmulator(behaviours={"eks_init_containers": True}) as emu:
        emu.setup(definitions=("eksdef",), kind="eks")
        emu.add_outcome({"attempts": [{"init_exit_code": 2, "init_reason": "inputs missing"}]}, name="bad-init")
        good = emu.submit("good", definition="eksdef")
        bad = emu.submit("bad-init", definition="eksdef")
        emu.advance(120)
        client = emu.client()
        good_detail, bad_detail = client.describe_jobs(jobs=[good, bad])["jobs"]
        assert good_detail["status"] == "SUCCEEDED"
        assert good_detail["eksAttempts"][0]["initContainers"] == [{"name": "fetch-inputs", "exitCode": 0}]
        attempt = bad_detail["eksAttempts"][0]
        assert bad_detail["status"] == "FAILED"
        assert attempt["initContainers"] == [{"name": "fetch-inputs", "exitCode": 2, "reason": "inputs missing"}]
        assert attempt["containers"] == [{"name": "main"}]  # never started: no exit code
        summary = next(
            j for j in client.list_jobs(jobQueue="queue", filters=AFTER_0)["jobSummaryList"] if j["jobId"] == bad
        )
        assert summary["container"] == {"exitCode": 2, "reason": "inputs missing"}


def _listed(client: Any, flt: dict[str, Any], page_size: int) -> list[tuple[str, str]]:
    pages = client.get_paginator("list_jobs").paginate(
        jobQueue="queue", filters=[flt], PaginationConfig={"PageSize": page_size}
    )
    return [(j["jobName"], j["jobDefinition"].rsplit(":", 1)[1]) for page in pages for j in page["jobSummaryList"]]


@pytest.mark.parametrize("grouped", [True, False])
def test_job_name_listing_is_grouped_by_name_and_revision(grouped: bool) -> None:
    with BatchEmulator(behaviours={"grouped_listing": grouped}) as emu:
        emu.setup(definitions=("jd",))
        emu.model.register_job_definition(definition_body("jd"))  # revision 2
        for name, revision in [("etl-b", 1), ("etl-a", 1), ("etl-b", 2), ("etl-a", 2), ("etl-b", 1), ("etl-a", 1)]:
            emu.submit(name, definition=f"jd:{revision}")
            emu.advance(1)
        listed = _listed(emu.client(), {"name": "JOB_NAME", "values": ["etl-*"]}, page_size=2)
        newest_first = [("etl-a", "1"), ("etl-b", "1"), ("etl-a", "2"), ("etl-b", "2"), ("etl-a", "1"), ("etl-b", "1")]
        by_group = [("etl-a", "2"), ("etl-a", "1"), ("etl-a", "1"), ("etl-b", "2"), ("etl-b", "1"), ("etl-b", "1")]
        assert listed == (by_group if grouped else newest_first)


def test_job_definition_listing_is_grouped_by_definition_name() -> None:
    with BatchEmulator(profile="realistic") as emu:
        emu.setup(definitions=("jd-b", "jd-a"))
        for definition in ("jd-b", "jd-a", "jd-b", "jd-a"):
            emu.submit(f"run-{definition}", definition=definition)
            emu.advance(1)
        emu.advance(3)  # past the visibility lag
        pages = (
            emu.client()
            .get_paginator("list_jobs")
            .paginate(
                jobQueue="queue",
                filters=[{"name": "JOB_DEFINITION", "values": ["jd-*"]}],
                PaginationConfig={"PageSize": 3},
            )
        )
        listed = [j["jobName"] for page in pages for j in page["jobSummaryList"]]
        assert listed == ["run-jd-a", "run-jd-a", "run-jd-b", "run-jd-b"]


def test_profiles_and_switches() -> None:
    assert Behaviours.build("realistic") == Behaviours(
        retry_to_runnable=True,
        visibility_lag_seconds=3.0,
        summary_lag_seconds=5.0,
        ecs_sidecar=True,
        eks_init_containers=True,
        grouped_listing=True,
    )
    assert Behaviours.build("realistic", {"visibility_lag_seconds": 0}).visibility_lag_seconds == 0
    with pytest.raises(ValueError, match="profile='real'"):
        Behaviours.build("real")
    with pytest.raises(ValueError, match=r"unknown keys \['lag'\]"):
        Behaviours.build("simple", {"lag": 1})
    with BatchEmulator(scenario={"profile": "realistic", "behaviours": {"summary_lag_seconds": 1}}) as emu:
        assert emu.behaviours.grouped_listing and emu.behaviours.summary_lag_seconds == 1
    with BatchEmulator(scenario={"profile": "realistic"}, profile="simple") as emu:
        assert emu.behaviours == Behaviours()  # the constructor wins


def test_job_names_the_service_rejects(batch_client: Any) -> None:
    for bad in ("has space", "k\u212aafka", "x" * 129, "-starts-with-dash", "dot.ted", ""):
        with pytest.raises(ClientError) as err:
            batch_client.submit_job(jobName=bad, jobQueue="queue", jobDefinition="jobdef")
        assert err.value.response["Error"]["Code"] == "ClientException", bad
    batch_client.submit_job(jobName="x" * 128, jobQueue="queue", jobDefinition="jobdef")


def test_job_name_filter_is_ascii_case_insensitive(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.submit("KAFKA-load")
    for value, expected in (("kafka-LOAD", 1), ("\u212aafka*", 0), ("kaf*", 1)):
        found = batch_client.list_jobs(jobQueue="queue", filters=[{"name": "JOB_NAME", "values": [value]}])
        assert len(found["jobSummaryList"]) == expected, value


PROVIDER_MODULES = {
    "query",
    "jobs",
    "policy",
    "watch",
    "arguments",
    "sensors",
    "operators",
    "triggers",
    "hooks",
    "links",
}


# Test tooling beside the emulator that drives the provider's own classes (run_deferred runs a sensor's trigger); no
# module of the emulator may import it, so the oracle cannot reach provider code through it.
PROVIDER_DRIVERS = {"deferral.py": "airflow_batch_jobs.testing.deferral"}


def test_the_emulator_imports_no_provider_code() -> None:
    """An oracle that shares code with what it checks would agree with its bugs."""
    package = Path(__file__).resolve().parents[2] / "airflow_batch_jobs" / "testing"
    offenders = []
    for module in sorted(package.glob("*.py")):
        if module.name in PROVIDER_DRIVERS:
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                parts = name.split(".")
                if parts[0] == "airflow_batch_jobs" and (len(parts) < 2 or parts[1] != "testing"):
                    offenders.append(f"{module.name}: {name}")
                if name in PROVIDER_DRIVERS.values() and module.name != "__init__.py":  # its lazy re-export
                    offenders.append(f"{module.name}: {name}")
    assert offenders == []
    assert PROVIDER_MODULES  # the modules that must stay out, for the reader


# -- found by an adversarial review against the service's documentation ------------------------------------------


def test_no_exit_code_before_the_attempt_ends() -> None:
    """``exitCode`` is "returned upon completion": a running job shows none, whatever the kind."""
    with BatchEmulator(profile="realistic", behaviours={"visibility_lag_seconds": 0}) as emu:
        emu.setup()
        emu.setup(definitions=("ecsdef",), kind="ecs")
        emu.setup(definitions=("eksdef",), kind="eks")
        emu.add_outcome({"attempts": [{"exit_code": 3, "reason": "boom", "duration": 60}]})
        ids = [emu.submit("c"), emu.submit("e", definition="ecsdef"), emu.submit("k", definition="eksdef")]
        emu.advance(1 + 1 + 2 + 2 + 5)  # RUNNING, 55 s to go
        client = emu.client()
        container, ecs, eks = client.describe_jobs(jobs=ids)["jobs"]
        assert {container["status"], ecs["status"], eks["status"]} == {"RUNNING"}
        assert "exitCode" not in container["container"] and "reason" not in container["container"]
        assert container["container"]["logStreamName"]  # what exists while running is there
        assert all("exitCode" not in c for c in ecs["ecsProperties"]["taskProperties"][0]["containers"])
        assert all("exitCode" not in c for c in eks["eksProperties"]["podProperties"]["containers"])
        emu.advance(60)
        container, ecs, _ = client.describe_jobs(jobs=ids)["jobs"]
        assert container["container"]["exitCode"] == 3
        assert ecs["ecsProperties"]["taskProperties"][0]["containers"][0]["exitCode"] == 3


def test_a_cancelled_array_parent_is_cancelled_once_its_running_children_complete(
    batch_emulator: BatchEmulator, batch_client: Any
) -> None:
    parent = batch_emulator.submit("arr", arrayProperties={"size": 2})
    batch_emulator.advance(8)  # the children are RUNNING: a cancel does not stop them
    batch_client.cancel_job(jobId=parent, reason="stop the array")
    batch_emulator.advance(100)
    children = batch_client.list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len(children) == 2
    (detail,) = batch_client.describe_jobs(jobs=[parent])["jobs"]
    assert (detail["status"], detail["statusReason"], detail.get("isCancelled")) == ("FAILED", "stop the array", True)


def test_a_cancel_of_a_running_multi_node_job_does_nothing(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.model.register_job_definition(definition_body("mnp", "multinode", num_nodes=2))
    batch_emulator.add_outcome({"attempts": [{"exit_code": 2, "duration": 30}]}, name="mpi")
    job = batch_emulator.submit("mpi", definition="mnp")
    batch_emulator.advance(10)
    assert _statuses_over(batch_emulator, job, 1) == ["RUNNING"]
    batch_client.cancel_job(jobId=job, reason="too late")
    batch_emulator.advance(100)
    (detail,) = batch_client.describe_jobs(jobs=[job])["jobs"]
    assert detail["status"] == "FAILED" and "isCancelled" not in detail  # it failed on its own


def test_a_pending_job_is_cancelled_after_its_dependencies_complete(
    batch_emulator: BatchEmulator, batch_client: Any
) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 0, "duration": 100}]}, name="long")
    upstream = batch_emulator.submit("long")
    waiting = batch_emulator.submit("after", dependsOn=[{"jobId": upstream}])
    batch_emulator.advance(5)
    batch_client.cancel_job(jobId=waiting, reason="not needed")
    batch_emulator.advance(1)
    assert batch_client.describe_jobs(jobs=[waiting])["jobs"][0]["status"] == "PENDING"
    batch_emulator.advance(120)  # the dependency has completed
    (detail,) = batch_client.describe_jobs(jobs=[waiting])["jobs"]
    assert (detail["status"], detail["isCancelled"]) == ("FAILED", True)
    assert "attempts" in detail and detail["attempts"] == []


def test_terminate_of_a_job_that_has_not_started_cancels_it(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    job = batch_emulator.submit("early")
    batch_client.terminate_job(jobId=job, reason="never mind")
    (detail,) = batch_client.describe_jobs(jobs=[job])["jobs"]
    assert detail["status"] == "FAILED" and detail.get("isCancelled") is True and "isTerminated" not in detail


def test_array_children_are_not_seen_before_their_parent() -> None:
    with BatchEmulator(behaviours={"visibility_lag_seconds": 5}) as emu:
        emu.setup()
        parent = emu.submit("fan", arrayProperties={"size": 2})
        emu.advance(2)  # the children exist, the parent is not visible yet
        client = emu.client()
        assert client.describe_jobs(jobs=[parent, f"{parent}:0"])["jobs"] == []
        emu.advance(3)
        assert len(client.describe_jobs(jobs=[parent, f"{parent}:0"])["jobs"]) == 2
        (summary,) = client.list_jobs(jobQueue="queue", filters=AFTER_0)["jobSummaryList"]
        assert summary["arrayProperties"]["statusSummaryLastUpdatedAt"] == emu.now_ms()


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"retryStrategy": {"attempts": 0}}, "between 1 and 10"),
        ({"retryStrategy": {"attempts": 11}}, "between 1 and 10"),
        ({"dependsOn": [{"type": "SEQUENTIAL"}]}, "does not model dependsOn"),
    ],
)
def test_submit_limits(batch_client: Any, request_fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as err:
        batch_client.submit_job(jobName="j", jobQueue="queue", jobDefinition="jobdef", **request_fields)
    assert err.value.response["Error"]["Code"] == "ClientException" and message in str(err.value)


def test_odd_input_is_an_error_answer_not_a_dropped_connection(
    batch_emulator: BatchEmulator, batch_client: Any
) -> None:
    import requests

    with pytest.raises(ClientError) as err:
        batch_client.list_jobs(jobQueue="queue", filters=[{"name": "AFTER_CREATED_AT", "values": ["\u00b2"]}])
    assert err.value.response["Error"]["Code"] == "ClientException"
    resp = requests.post(batch_emulator.endpoint_url + "/v1/listjobs", data=b"{not json", timeout=5)
    assert resp.status_code == 400 and resp.json()["__type"] == "SerializationException"
    assert resp.headers["x-amzn-RequestId"]
