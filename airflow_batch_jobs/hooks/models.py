"""botocore's models loaded once per process, and off the event loop: aiobotocore parses a service's model files
inside ``create_client``, on the event loop, with the session's own loader. The first Batch client of a triggerer held
its loop for 0.1 s to a second; an SQS client (the job-event consumer's, made again after each failure to read its
queue) 0.4 to 0.5 s. A session given :func:`model_loader`'s loader finds them loaded.

:class:`SharedModels` is the hook side: mixed into an ``AwsBaseHook`` subclass, its async sessions use that loader,
warmed in a thread first, and its blocking sessions share it too (each boto3 session otherwise parses botocore's
endpoints and the service's models again: about 0.1 s for every hook a worker process makes).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import boto3.session
import botocore.loaders
import botocore.session

# One loader per data path (AWS_DATA_PATH) for the process, and the services whose models it holds.
_MODEL_LOADERS: dict[str | None, botocore.loaders.Loader] = {}
_WARMED: set[tuple[str | None, str]] = set()
_MODEL_LOADERS_LOCK = threading.Lock()


def shared_loader(data_path: str | None = None) -> botocore.loaders.Loader:
    """The process's botocore data loader for ``data_path``: what one session's clients have parsed, the next
    session's find parsed."""
    with _MODEL_LOADERS_LOCK:
        loader = _MODEL_LOADERS.get(data_path)
        if loader is None:
            loader = _MODEL_LOADERS[data_path] = botocore.loaders.create_loader(data_path)
        return loader


def model_loader(service: str, data_path: str | None = None) -> botocore.loaders.Loader:
    """:func:`shared_loader`, holding what a ``service`` client is made from (its service model, endpoint rules and
    paginators; the endpoints, partitions, retry and defaults data).

    Blocking: call it off the event loop. The loads are exactly a client's: a throwaway blocking client is made from
    the loader (no call is sent), and its paginators read."""
    loader = shared_loader(data_path)
    with _MODEL_LOADERS_LOCK:
        if (data_path, service) not in _WARMED:
            session = botocore.session.Session()
            session.register_component("data_loader", loader)
            client = session.create_client(
                service, region_name="us-east-1", aws_access_key_id="model-warm-up", aws_secret_access_key="unused"
            )
            client.can_paginate(next(iter(client.meta.method_to_api_mapping)))  # loads the paginators file
            client.close()
            _WARMED.add((data_path, service))
        return loader


def data_path_of(session: Any) -> str | None:
    """The botocore data path a session reads models from (``AWS_DATA_PATH``, or ``data_path`` in the AWS config)."""
    path = session.get_config_variable("data_path")
    return str(path) if path else None


def warm_models(service: str) -> None:
    """:func:`model_loader` for botocore's default data path (``AWS_DATA_PATH``, or ``data_path`` in the AWS
    config). Blocking."""
    model_loader(service, data_path_of(botocore.session.Session()))


class SharedModels:
    """For an ``AwsBaseHook`` subclass (before it in the bases): its clients' models are parsed once per process,
    and an async client's in a thread, not on the event loop."""

    client_type: str | None

    async def get_async_conn(self) -> Any:
        """The amazon provider's aiobotocore client context, the models warmed first in a thread."""
        await asyncio.to_thread(warm_models, str(self.client_type))
        return await super().get_async_conn()  # type: ignore[misc]

    def get_session(self, region_name: str | None = None, deferrable: bool = False) -> Any:
        """The amazon provider's session, reading models through :func:`shared_loader` (an async one's warmed by
        :func:`model_loader`). Blocking (the amazon provider calls it in a thread)."""
        session = super().get_session(region_name=region_name, deferrable=deferrable)  # type: ignore[misc]
        if deferrable:
            session.register_component("data_loader", model_loader(str(self.client_type), data_path_of(session)))
        elif isinstance(session, boto3.session.Session):  # its botocore session makes the clients
            core = session._session
            core.register_component("data_loader", shared_loader(data_path_of(core)))
        return session
