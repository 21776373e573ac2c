"""The first trigger's client does not parse botocore's models on the triggerer's event loop: aiobotocore does that
inside ``create_client`` with the session's loader, which held the loop for 0.1 s to a second at the first trigger
start, and an SQS client (the job-event consumer's) 0.4 to 0.5 s. The models are loaded in a thread, once per process
(hooks.models.model_loader)."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any
from unittest import mock

import botocore.loaders
import pytest

from airflow_batch_jobs.hooks import models
from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.hooks.events_queue import EventsQueueHook
from airflow_batch_jobs.triggers.shared_poll import ClientPool

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_batch_jobs.testing import BatchEmulator


@pytest.fixture
def model_files_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, str]]]:
    """Every botocore data file parsed from now on, with the thread that parsed it; as if no model had been loaded in
    this process yet."""
    reads: list[tuple[int, str]] = []
    load_file = botocore.loaders.JSONFileLoader.load_file

    def recording(self: Any, file_path: str) -> Any:
        reads.append((threading.get_ident(), file_path))
        return load_file(self, file_path)

    monkeypatch.setattr(models, "_MODEL_LOADERS", {})
    monkeypatch.setattr(models, "_WARMED", set())
    with (
        mock.patch.object(botocore.loaders.JSONFileLoader, "load_file", recording),
        mock.patch("airflow.providers.amazon.aws.hooks.base_aws._loader", botocore.loaders.Loader()),
    ):
        yield reads


async def first_listing(key: str) -> int:
    """A client from the pool, as the first trigger gets it, and one ListJobs page; returns the loop's thread."""
    async with ClientPool.lease(key, BatchJobsHook()) as client:
        await client.get_paginator("list_jobs").paginate(jobQueue="queue").build_full_result()
    return threading.get_ident()


def test_the_first_client_parses_no_model_on_the_event_loop(emu: BatchEmulator, model_files_read: list) -> None:
    emu.submit("etl")
    loop_thread = asyncio.run(first_listing("warm-up"))
    on_loop = [path for thread, path in model_files_read if thread == loop_thread]
    assert on_loop == []  # before: batch/.../service-2, endpoint-rule-set-1, paginators-1, endpoints, partitions ...
    elsewhere = [path for thread, path in model_files_read if thread != loop_thread]
    assert any("batch" in path and "service-2" in path for path in elsewhere), elsewhere
    assert any("paginators-1" in path for path in elsewhere), elsewhere


def test_the_models_are_loaded_once_per_process(emu: BatchEmulator, model_files_read: list) -> None:
    asyncio.run(first_listing("first"))
    loaded = len(model_files_read)
    asyncio.run(first_listing("second"))  # another event loop, another client: nothing parsed again
    assert loaded and len(model_files_read) == loaded


async def consumer_client() -> int:
    """The event consumer's SQS client, made as it makes it (the client context in a thread, entered on the loop);
    returns the loop's thread. No call is sent."""
    hook = EventsQueueHook(aws_conn_id=None, region_name="us-east-1")
    context = await asyncio.to_thread(hook.get_client_type, region_name="us-east-1", deferrable=True)
    async with context as client:
        assert client.meta.service_model.service_name == "sqs"
    return threading.get_ident()


def test_the_event_consumers_client_parses_no_model_on_the_event_loop(
    model_files_read: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "model-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "model-test")
    loop_thread = asyncio.run(consumer_client())
    on_loop = [path for thread, path in model_files_read if thread == loop_thread]
    assert on_loop == []
    assert any("sqs" in path and "service-2" in path for _, path in model_files_read), model_files_read


def blocking_clients() -> None:
    """The blocking clients a worker process makes (no call sent): a sensor's Batch client and a failure report's
    logs client."""
    from airflow_batch_jobs.hooks.failure_logs import FailureLogsHook

    BatchJobsHook().get_client_type()
    FailureLogsHook(region_name="us-east-1").get_client_type()


def test_blocking_clients_share_the_models_parsed_by_the_first(emu: BatchEmulator, model_files_read: list) -> None:
    blocking_clients()
    loaded = [path for _, path in model_files_read]
    assert any("batch" in path for path in loaded) and any("logs" in path for path in loaded), loaded
    blocking_clients()  # new hooks, new boto3 sessions: nothing parsed again (before: endpoints, models, rules)
    assert [path for _, path in model_files_read] == loaded
