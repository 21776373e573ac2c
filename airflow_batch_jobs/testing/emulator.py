"""BatchEmulator: the local AWS Batch endpoint for tests, demos and users' own DAG tests."""

from __future__ import annotations

import json
import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any

import boto3

from airflow_batch_jobs.testing.behaviours import Behaviours
from airflow_batch_jobs.testing.clock import Clock, ManualClock, ScaledClock
from airflow_batch_jobs.testing.events import EventBus, EventFaults, Outage
from airflow_batch_jobs.testing.faults import Fault, FaultPlan
from airflow_batch_jobs.testing.keepalive import KeepAliveServer
from airflow_batch_jobs.testing.model import DEFAULT_RETENTION_S, BatchModel
from airflow_batch_jobs.testing.outcomes import JobScript, OutcomeRules
from airflow_batch_jobs.testing.rules import ACCOUNT
from airflow_batch_jobs.testing.scenario import Scenario, compute_environment_request, definition_body
from airflow_batch_jobs.testing.server import BatchApp

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType


log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Long enough for Airflow's secret masker (it skips, and warns about, values shorter than a few characters).
DUMMY_ACCESS_KEY_ID = "emulator-access-key-id"
DUMMY_SECRET_ACCESS_KEY = "emulator-secret-access-key"


class BatchEmulator:
    """An in-memory AWS Batch served over HTTP on loopback, with a clock and faults under the caller's control.

    ``with BatchEmulator() as emu:`` starts it on a free port; ``emu.endpoint_url`` goes into a boto3 client or an
    Airflow ``aws`` connection's ``endpoint_url``. ``speed=None`` (default) gives a manual clock moved by
    :meth:`advance`; ``speed=10`` runs ten times faster than wall time (demos).

    ``profile="realistic"`` turns on the service's awkward behaviours (jobs visible late, lagging array summaries,
    ECS sidecars, EKS init containers, grouped name listings; see :class:`Behaviours`); ``behaviours={...}``
    sets single switches on top of the profile. A scenario's ``profile`` / ``behaviours`` keys do the same;
    constructor arguments win.

    ``events=True`` (or a scenario's ``events: true``) publishes every job status change as EventBridge delivers
    it to an SQS queue (``events_queue_url``), served by moto on loopback; ``inject_event_faults`` and
    ``queue_unreachable`` make the delivery go wrong. See :mod:`airflow_batch_jobs.testing.events`.
    """

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        speed: float | None = None,
        clock: Clock | None = None,
        seed: int = 0,
        region: str = "us-east-1",
        retention_seconds: float = DEFAULT_RETENTION_S,
        validate_responses: bool = True,
        scenario: str | Path | Mapping[str, Any] | None = None,
        profile: str | None = None,
        behaviours: Mapping[str, Any] | None = None,
        events: bool | None = None,
        events_pump_seconds: float = 0.05,
    ) -> None:
        if host != LOOPBACK:
            warnings.warn(
                f"BatchEmulator bound to {host}, not {LOOPBACK}: it is reachable from other machines.", stacklevel=2
            )
            log.warning("BatchEmulator is binding to %s rather than loopback (%s).", host, LOOPBACK)
        self.host = host
        self.port = port
        self.outcomes = OutcomeRules()
        plan = Scenario.load(scenario) if scenario is not None else None
        self.behaviours = Behaviours.build(
            profile or (plan.profile if plan else "simple"),
            {**(plan.behaviours if plan else {}), **(behaviours or {})},
        )
        self.model = BatchModel(
            clock=clock or (ScaledClock(speed) if speed else ManualClock()),
            outcomes=self.outcomes,
            region=region,
            retention_seconds=retention_seconds,
            behaviours=self.behaviours,
            seed=seed,
        )
        self.faults = FaultPlan(seed=seed)
        self.app = BatchApp(self.model, self.faults, validate_responses=validate_responses)
        self._server: KeepAliveServer | None = None
        self._thread: threading.Thread | None = None
        # the scenario's `at` times count from here, as its submissions' do
        start_ms = self.model.clock.now_ms()
        if plan is not None:
            plan.apply(self.model)
        self.events: EventBus | None = None
        if events if events is not None else (plan is not None and plan.events):
            self.events = EventBus(self.model, seed=seed, account=ACCOUNT, pump_seconds=events_pump_seconds)
            if plan is not None:
                faults = dict(plan.event_faults)
                windows = faults.pop("unreachable", None) or []
                self.events.set_faults(EventFaults(**faults))
                for window in windows:
                    start = start_ms + int(float(window.get("at", 0)) * 1000)
                    self.events.unreachable(float(window["seconds"]), how=window.get("how", "error"), start_ms=start)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> BatchEmulator:
        """Start serving; after :meth:`stop`, starts again on the same port with the same state."""
        if self._server is not None:
            return self
        if self.events is not None:
            # a scaled (or any other) clock moves by itself: a thread publishes as it passes transitions
            self.events.start(pump_thread=not isinstance(self.model.clock, ManualClock))
        self._server = KeepAliveServer(self.host, self.port, self._serve if self.events is not None else self.app)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="batch-emulator", daemon=True
        )
        self._thread.start()
        return self

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The service, then the events its answer made due (a CancelJob's FAILED is in the queue when it returns;
        a control call may have moved the clock)."""
        answer = self.app(environ, start_response)
        assert self.events is not None
        try:
            self.events.pump()
        except Exception:  # the Batch answer stands; the missing events show in the test
            log.exception("Publishing the emulated job state-change events failed")
        return answer

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None
        if self.events is not None:
            self.events.stop()

    def __enter__(self) -> BatchEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, **config: Any) -> Any:
        """A boto3 Batch client for this endpoint (dummy credentials)."""
        return boto3.client(
            "batch",
            endpoint_url=self.endpoint_url,
            region_name=self.model.region,
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            **config,
        )

    def airflow_connection(self) -> str:
        """The JSON for ``AIRFLOW_CONN_<ID>`` that points an ``aws`` connection at this emulator (with events, its
        SQS calls at the events queue's endpoint: the amazon provider's ``service_config``)."""
        extra: dict[str, Any] = {"region_name": self.model.region, "endpoint_url": self.endpoint_url}
        if self.events is not None and self.events.started:
            extra["service_config"] = {"sqs": {"endpoint_url": self.events.endpoint_url}}
        return json.dumps(
            {
                "conn_type": "aws",
                "login": DUMMY_ACCESS_KEY_ID,
                "password": DUMMY_SECRET_ACCESS_KEY,
                "extra": extra,
            }
        )

    # -- job state-change events -------------------------------------------------------------------------
    def _bus(self) -> EventBus:
        if self.events is None:
            raise RuntimeError("Job state-change events are off: BatchEmulator(events=True) turns them on.")
        return self.events

    @property
    def events_queue_url(self) -> str:
        """The SQS queue receiving the job state-change events (once started)."""
        return self._bus().queue_url

    @property
    def events_endpoint_url(self) -> str:
        """The SQS endpoint serving :attr:`events_queue_url`."""
        return self._bus().endpoint_url

    def sqs_client(self, **config: Any) -> Any:
        """A boto3 SQS client for the events queue (dummy credentials, the emulator's region)."""
        return self._bus().client(**config)

    def inject_event_faults(
        self,
        *,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        delay_seconds: float = 0.0,
        loss: float = 0.0,
        reorder_window_seconds: float = 10.0,
    ) -> None:
        """From now on (replacing earlier settings): a share of events delivered twice, held back up to the
        window (overtaken by later ones), or lost; every event ``delay_seconds`` late. Seeded per event."""
        self._bus().set_faults(EventFaults(duplicate, reorder, delay_seconds, loss, reorder_window_seconds))

    def clear_event_faults(self) -> None:
        self._bus().set_faults(EventFaults())

    def queue_unreachable(self, seconds: float, *, how: str = "error") -> Outage:
        """For ``seconds`` of emulated time from now the events queue answers 503 (``how="error"``) or closes
        connections (``"refuse"``); deliveries due meanwhile arrive when it is back."""
        return self._bus().unreachable(seconds, how=how)

    def events_published(self) -> dict[str, int]:
        """Counts: events, sent (duplicates included), lost, duplicated, pending, refused (see the events module)."""
        return self._bus().published()

    def publish_events(self) -> None:
        """Publish what is due now (done on advance() and after every request; with a scaled clock, by a thread)."""
        self._bus().pump()

    # -- control -------------------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move the emulated clock forward (also works with a scaled clock: a jump on top of wall time)."""
        self.model.clock.advance(seconds)
        self.model.run_schedule()
        if self.events is not None:
            self.events.pump()

    def now_ms(self) -> int:
        return self.model.clock.now_ms()

    def inject(
        self,
        operation: str,
        kind: str,
        *,
        rate: float | None = None,
        count: int | None = None,
        skip: int = 0,
        seconds: float = 0.0,
    ) -> Fault:
        """Fail (or slow) calls of ``operation`` ("*" = all): ``count`` calls after ``skip``, or a ``rate``."""
        return self.faults.add(Fault(operation, kind, rate=rate, count=count, skip=skip, seconds=seconds))

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def calls(self) -> dict[str, int]:
        """Requests received per operation (faulted ones included) since the last :meth:`reset_counters`."""
        return dict(self.faults.calls)

    def reset_counters(self) -> None:
        self.faults.reset_counters()

    def add_outcome(
        self,
        script: JobScript | Mapping[str, Any],
        *,
        name: str | None = None,
        definition: str | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        """Script the jobs matching a name glob / definition name / array indices (first matching rule wins)."""
        self.outcomes.add(script, name=name, definition=definition, indices=indices)

    def script_job(self, job_id: str, script: JobScript | Mapping[str, Any]) -> None:
        """Script one submitted job by id (replaces what the rules gave it)."""
        self.model.script_job(job_id, script if isinstance(script, JobScript) else JobScript.from_dict(script))

    # -- conveniences for tests ----------------------------------------------------------------------------
    def setup(self, queue: str = "queue", definitions: Sequence[str] = ("jobdef",), kind: str = "container") -> None:
        """A managed compute environment ``ce``, a queue and job definitions of one ``kind`` (container, ecs, eks,
        multinode), as most tests need. Call it again for more queues: ``setup(queue="nightly")``."""
        model = self.model
        if "ce" not in model.compute_environments:
            model.create_compute_environment(compute_environment_request("ce"))
        if queue not in model.queues:
            model.create_job_queue(
                {
                    "jobQueueName": queue,
                    "priority": 1,
                    "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ce"}],
                }
            )
        for name in definitions:
            if name not in model.definitions:
                model.register_job_definition(definition_body(name, kind, behaviours=self.behaviours))

    def submit(self, name: str, queue: str = "queue", definition: str = "jobdef", **request: Any) -> str:
        """Submit a job directly (no HTTP, no counters); returns its id. ``request`` takes SubmitJob fields."""
        return str(
            self.model.submit_job({"jobName": name, "jobQueue": queue, "jobDefinition": definition, **request})["jobId"]
        )
