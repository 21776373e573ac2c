"""Each rule of AWS_BATCH_SEMANTICS.md, checked through a real boto3 client against the running emulator."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_batch_jobs.testing import BatchEmulator


def _names(resp: dict[str, Any]) -> list[str]:
    return [j["jobName"] for j in resp["jobSummaryList"]]


def _error(call: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == "ClientException"
    return err.value


def test_exactly_one_selector(batch_client: Any) -> None:
    _error(batch_client.list_jobs)
    _error(batch_client.list_jobs, jobQueue="queue", arrayJobId="x")


def test_default_is_running_only(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.submit("a")
    batch_emulator.advance(1)
    assert batch_client.list_jobs(jobQueue="queue")["jobSummaryList"] == []  # PENDING, not listed
    batch_emulator.advance(5)  # 1 submitted + 1 pending + 2 runnable + 2 starting = RUNNING at 6 s
    assert _names(batch_client.list_jobs(jobQueue="queue")) == ["a"]


def test_one_filter_per_call_and_valid_names(batch_client: Any) -> None:
    err = _error(
        batch_client.list_jobs,
        jobQueue="queue",
        filters=[{"name": "JOB_NAME", "values": ["a"]}, {"name": "JOB_DEFINITION", "values": ["b"]}],
    )
    assert "Only one filter key-value pair can be specified." in str(err)
    _error(batch_client.list_jobs, jobQueue="queue", filters=[{"name": "STATUS", "values": ["x"]}])


def test_filter_ignores_job_status_except_share_identifier(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.submit("a", shareIdentifier="s1")
    batch_emulator.submit("b", shareIdentifier="s1")
    by_name = batch_client.list_jobs(
        jobQueue="queue", jobStatus="RUNNING", filters=[{"name": "JOB_NAME", "values": ["a"]}]
    )
    assert _names(by_name) == ["a"]  # SUBMITTED, returned although jobStatus=RUNNING
    share = {"jobQueue": "queue", "filters": [{"name": "SHARE_IDENTIFIER", "values": ["s1"]}]}
    assert batch_client.list_jobs(**share, jobStatus="RUNNING")["jobSummaryList"] == []
    assert sorted(_names(batch_client.list_jobs(**share, jobStatus="SUBMITTED"))) == ["a", "b"]


def test_job_name_filter_case_insensitive_prefix(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    for name in ("test1", "Test10", "other"):
        batch_emulator.submit(name)
    flt = {"name": "JOB_NAME", "values": ["TEST1*"]}
    assert sorted(_names(batch_client.list_jobs(jobQueue="queue", filters=[flt]))) == ["Test10", "test1"]
    exact = {"name": "JOB_NAME", "values": ["TEST1"]}
    assert _names(batch_client.list_jobs(jobQueue="queue", filters=[exact])) == ["test1"]


def test_job_definition_filter(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.setup(definitions=("jd1", "jd1A"))
    batch_emulator.model.register_job_definition({"jobDefinitionName": "jd1", "type": "container"})  # revision 2
    batch_emulator.submit("r1", definition="jd1:1")
    batch_emulator.submit("r2", definition="jd1:2")
    batch_emulator.submit("other", definition="jd1A")

    def listed(value: str) -> list[str]:
        return sorted(
            _names(batch_client.list_jobs(jobQueue="queue", filters=[{"name": "JOB_DEFINITION", "values": [value]}]))
        )

    assert listed("jd1") == ["r1", "r2"]
    assert listed("jd1*") == ["other", "r1", "r2"]
    assert listed("JD1") == []
    arn = "arn:aws:batch:us-east-1:123456789012:job-definition/jd1:2"
    assert listed(arn) == ["r2"]
    _error(batch_client.list_jobs, jobQueue="queue", filters=[{"name": "JOB_DEFINITION", "values": [arn + "*"]}])


def test_created_at_filters_are_epoch_ms(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.submit("old")
    batch_emulator.advance(60)
    middle = batch_emulator.now_ms()
    batch_emulator.advance(60)
    batch_emulator.submit("new")
    after = [{"name": "AFTER_CREATED_AT", "values": [str(middle)]}]
    before = [{"name": "BEFORE_CREATED_AT", "values": [str(middle)]}]
    assert _names(batch_client.list_jobs(jobQueue="queue", filters=after)) == ["new"]
    assert _names(batch_client.list_jobs(jobQueue="queue", filters=before)) == ["old"]


def test_newest_first_pagination_stable_under_new_jobs(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    for i in range(25):
        batch_emulator.submit(f"j{i:02d}")
        batch_emulator.advance(1)
    flt = [{"name": "AFTER_CREATED_AT", "values": ["0"]}]
    page = batch_client.list_jobs(jobQueue="queue", filters=flt, maxResults=10)
    seen = _names(page)
    batch_emulator.submit("late")  # created while the listing is paged: shifts nothing
    while page.get("nextToken"):
        page = batch_client.list_jobs(jobQueue="queue", filters=flt, maxResults=10, nextToken=page["nextToken"])
        seen += _names(page)
    assert seen == [f"j{i:02d}" for i in range(24, -1, -1)]
    paginator = batch_client.get_paginator("list_jobs")
    pages = list(paginator.paginate(jobQueue="queue", filters=flt, PaginationConfig={"PageSize": 7}))
    assert len(pages) == 4 and sum(len(p["jobSummaryList"]) for p in pages) == 26


def test_page_size_limits(batch_client: Any) -> None:
    flt = [{"name": "JOB_NAME", "values": ["a"]}]
    _error(batch_client.list_jobs, jobQueue="queue", filters=flt, maxResults=101)
    batch_client.list_jobs(jobQueue="queue", filters=flt, maxResults=100)
    batch_client.list_jobs(jobQueue="queue", jobStatus="RUNNING", maxResults=1000)
    _error(batch_client.list_jobs, jobQueue="queue", jobStatus="RUNNING", maxResults=1001)
    _error(batch_client.list_jobs, jobQueue="queue", jobStatus="RUNNING", maxResults=0)


def test_token_from_another_request_is_rejected(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    for i in range(3):
        batch_emulator.submit(f"j{i}")
    page = batch_client.list_jobs(jobQueue="queue", filters=[{"name": "JOB_NAME", "values": ["j*"]}], maxResults=1)
    _error(batch_client.list_jobs, jobQueue="queue", jobStatus="SUBMITTED", nextToken=page["nextToken"])


def test_array_children_only_via_array_job_id(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    parent = batch_emulator.submit("fan", arrayProperties={"size": 3})
    batch_emulator.advance(2)
    flt = [{"name": "AFTER_CREATED_AT", "values": ["0"]}]
    queue_listing = batch_client.list_jobs(jobQueue="queue", filters=flt)["jobSummaryList"]
    assert [j["jobId"] for j in queue_listing] == [parent]
    assert queue_listing[0]["arrayProperties"]["size"] == 3
    children = batch_client.list_jobs(arrayJobId=parent, jobStatus="RUNNABLE")["jobSummaryList"]
    assert sorted(j["jobId"] for j in children) == [f"{parent}:{i}" for i in range(3)]
    assert sorted(j["arrayProperties"]["index"] for j in children) == [0, 1, 2]
    (detail,) = batch_client.describe_jobs(jobs=[parent])["jobs"]
    assert detail["status"] == "PENDING" and detail["arrayProperties"]["statusSummary"]["RUNNABLE"] == 3


def test_array_parent_fails_when_a_child_fails(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    batch_emulator.add_outcome({"attempts": [{"exit_code": 2}]}, name="fan", indices=[1])
    parent = batch_emulator.submit("fan", arrayProperties={"size": 3})
    batch_emulator.advance(60)
    (detail,) = batch_client.describe_jobs(jobs=[parent])["jobs"]
    assert detail["status"] == "FAILED"
    summary = detail["arrayProperties"]["statusSummary"]
    assert summary["SUCCEEDED"] == 2 and summary["FAILED"] == 1
    failed = batch_client.list_jobs(arrayJobId=parent, jobStatus="FAILED")["jobSummaryList"]
    assert [(j["jobId"], j["container"]["exitCode"]) for j in failed] == [(f"{parent}:1", 2)]


def test_multi_node_nodes(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    from airflow_batch_jobs.testing.scenario import definition_body

    batch_emulator.model.register_job_definition(definition_body("mnp", "multinode", num_nodes=3))
    job = batch_emulator.submit("mpi", definition="mnp")
    batch_emulator.advance(60)
    nodes = batch_client.list_jobs(multiNodeJobId=job, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert sorted(n["jobId"] for n in nodes) == [f"{job}#{i}" for i in range(3)]
    assert {n["nodeProperties"]["isMainNode"] for n in nodes} == {True, False}
    (detail,) = batch_client.describe_jobs(jobs=[job])["jobs"]
    assert detail["status"] == "SUCCEEDED" and detail["nodeProperties"]["numNodes"] == 3


def test_describe_limits_and_unknown_ids(batch_emulator: BatchEmulator, batch_client: Any) -> None:
    job = batch_emulator.submit("a")
    err = _error(batch_client.describe_jobs, jobs=[f"x{i}" for i in range(101)])
    assert "Maximum number of jobs supported is 100" in str(err)
    jobs = batch_client.describe_jobs(jobs=[job, "unknown"])["jobs"]
    assert [j["jobId"] for j in jobs] == [job]
    assert batch_client.describe_jobs(jobs=[])["jobs"] == []


def test_unknown_queue_is_a_client_error(batch_client: Any) -> None:
    _error(batch_client.list_jobs, jobQueue="nope", jobStatus="RUNNING")


def test_input_shapes_are_validated_by_botocore_model(batch_emulator: BatchEmulator) -> None:
    import requests

    resp = requests.post(batch_emulator.endpoint_url + "/v1/listjobs", json={"jobQueue": 5}, timeout=5)
    assert resp.status_code == 400 and "Invalid type for parameter jobQueue" in resp.json()["message"]


def test_retention_expires_finished_jobs(batch_client: Any) -> None:
    with BatchEmulator(retention_seconds=3600) as emu:
        emu.setup()
        job = emu.submit("a")
        client = emu.client()
        emu.advance(60)
        assert [j["jobId"] for j in client.describe_jobs(jobs=[job])["jobs"]] == [job]
        emu.advance(3600)
        assert client.describe_jobs(jobs=[job])["jobs"] == []
        assert (
            client.list_jobs(jobQueue="queue", filters=[{"name": "AFTER_CREATED_AT", "values": ["0"]}])[
                "jobSummaryList"
            ]
            == []
        )
