"""One more HTTP endpoint onto a running emulator's service: the same jobs and clock, its own call counters and log.

Giving each Airflow component its own endpoint tells which of them made which calls (the service does not know its
clients), e.g. the ListJobs calls of each of two triggerers.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import TYPE_CHECKING

from airflow_batch_jobs.testing.faults import FaultPlan
from airflow_batch_jobs.testing.keepalive import KeepAliveServer
from airflow_batch_jobs.testing.server import BatchApp

if TYPE_CHECKING:
    from types import TracebackType

    from airflow_batch_jobs.testing import BatchEmulator


class EmulatorEndpoint:
    """Serves ``emulator``'s model on another loopback port; :meth:`list_jobs_by_query` counts what it was asked."""

    def __init__(self, emulator: BatchEmulator) -> None:
        self.emulator = emulator
        self.calls = FaultPlan()  # no faults: only its counters and call log are used
        self._server = KeepAliveServer(emulator.host, 0, BatchApp(emulator.model, self.calls))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-endpoint", daemon=True
        )

    def __enter__(self) -> EmulatorEndpoint:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.emulator.host}:{self._server.server_port}"

    def airflow_connection(self) -> str:
        """The emulator's ``AIRFLOW_CONN_<ID>`` JSON, pointed at this endpoint."""
        connection = json.loads(self.emulator.airflow_connection())
        connection["extra"]["endpoint_url"] = self.endpoint_url
        return json.dumps(connection)

    def list_jobs_by_query(self) -> Counter[str]:
        """ListJobs calls received so far, by the question asked (queue and filters; every page of it counts)."""
        return Counter(
            json.dumps({k: v for k, v in entry["params"].items() if k not in ("nextToken", "maxResults")})
            for entry in list(self.calls.log)
            if entry["operation"] == "ListJobs" and "params" in entry
        )
