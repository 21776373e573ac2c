"""The emulator's HTTP face: AWS Batch rest-json on ``/v1/...``, CloudWatch Logs JSON 1.1 on ``/`` (told apart by
its ``X-Amz-Target`` header, as the one ``aws`` connection's endpoint serves both), and a control API on
``/_emulator/...``.

Requests are checked against botocore's own input shapes before the model sees them; with ``validate_responses``
every answer is checked against the output shape too (the check botocore's Stubber makes).
"""

from __future__ import annotations

import functools
import json
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.validate import ParamValidator
from werkzeug.wrappers import Request, Response

from airflow_batch_jobs.testing.errors import BatchServiceError
from airflow_batch_jobs.testing.faults import FAULT_KINDS, Fault, FaultPlan
from airflow_batch_jobs.testing.logs import TARGET_PREFIX, LogsService, logs_service_model

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from botocore.model import OperationModel, ServiceModel

    from airflow_batch_jobs.testing.model import BatchModel

CONTROL_PREFIX = "/_emulator"


def _handlers(model: BatchModel) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    return {
        "CreateComputeEnvironment": model.create_compute_environment,
        "DescribeComputeEnvironments": model.describe_compute_environments,
        "CreateJobQueue": model.create_job_queue,
        "DescribeJobQueues": model.describe_job_queues,
        "RegisterJobDefinition": model.register_job_definition,
        "DescribeJobDefinitions": model.describe_job_definitions,
        "SubmitJob": model.submit_job,
        "ListJobs": model.list_jobs,
        "DescribeJobs": model.describe_jobs,
        "CancelJob": lambda req: model.stop_job(req, "cancel"),
        "TerminateJob": lambda req: model.stop_job(req, "terminate"),
    }


@functools.cache
def batch_service_model() -> ServiceModel:
    """botocore's model of the service, loaded once per process (it takes tens of milliseconds)."""
    return botocore.session.get_session().get_service_model("batch")


class BatchApp:
    """A WSGI application serving ``model`` with ``faults`` applied."""

    def __init__(self, model: BatchModel, faults: FaultPlan, validate_responses: bool = True) -> None:
        self.model = model
        self.faults = faults
        self.validate_responses = validate_responses
        service = batch_service_model()
        handlers = _handlers(model)
        self.routes: dict[str, tuple[OperationModel, Callable[[dict[str, Any]], dict[str, Any]]]] = {}
        for name, handler in handlers.items():
            operation = service.operation_model(name)
            self.routes[operation.http["requestUri"]] = (operation, handler)
        logs = logs_service_model()
        self.targets = {
            TARGET_PREFIX + name: (logs.operation_model(name), handler)
            for name, handler in LogsService(model).handlers().items()
        }
        self.validator = ParamValidator()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.path.startswith(CONTROL_PREFIX):
            response = self._control(request)
        else:
            response = self._service(request, environ)
        return response(environ, start_response)

    # -- AWS Batch and CloudWatch Logs ---------------------------------------------------------------------
    def _service(self, request: Request, environ: dict[str, Any]) -> Response:
        target = request.headers.get("X-Amz-Target")
        route = self.targets.get(target) if target else self.routes.get(request.path)
        if route is None or request.method != "POST":
            unknown = target or f"{request.method} {request.path}"
            return _error(BatchServiceError(f"Unknown operation {unknown}", "UnknownOperation", 404))
        operation, handler = route
        delay, fault = self.faults.decide(operation.name)
        if delay:
            time.sleep(delay)
        entry: dict[str, Any] = {"operation": operation.name, "at": self.model.clock.now_ms()}
        if fault is not None:
            entry["fault"] = fault.kind
            self.faults.record(entry)
            if fault.kind == "drop":
                sock = environ.get("werkzeug.socket")
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
                return Response(b"", status=500)
            status, code = FAULT_KINDS[fault.kind] or (500, "ServerException")
            return _error(BatchServiceError("Injected fault: " + code, code, status))
        try:
            self.model.run_schedule()
            try:
                params = json.loads(request.get_data() or b"{}")
            except ValueError as err:
                raise BatchServiceError(f"The request body is not JSON: {err}", "SerializationException") from err
            entry["params"] = params
            assert operation.input_shape is not None  # every routed operation takes input
            report = self.validator.validate(params, operation.input_shape)
            if report.has_errors():
                raise BatchServiceError(report.generate_report())
            result = handler(params)
            if self.validate_responses:
                self._check_output(operation, result)
        except BatchServiceError as err:
            entry["error"] = err.code
            self.faults.record(entry)
            return _error(err)
        except Exception as err:  # a bug of the emulator's: answered loudly, not as a dropped connection to retry
            entry["error"] = "EmulatorBug"
            self.faults.record(entry)
            return _error(BatchServiceError(f"the emulator failed on {operation.name}: {err!r}", "EmulatorBug"))
        self.faults.record(entry)
        content_type = "application/x-amz-json-1.1" if target else "application/json"
        return Response(json.dumps(result), status=200, headers=_request_id(), content_type=content_type)

    def _check_output(self, operation: OperationModel, result: dict[str, Any]) -> None:
        if operation.output_shape is None:
            return
        report = self.validator.validate(result, operation.output_shape)
        # botocore marks JobDetail.startedAt required, but the service omits it before a job starts.
        errors = [
            e for e in report._errors if not (e[0] == "missing required field" and e[2]["required_name"] == "startedAt")
        ]
        if errors:
            # a 400 (not retried by clients) so that a test fails at once, with the reason
            raise BatchServiceError(
                f"emulator answer to {operation.name} breaks the botocore output shape: {errors}", "EmulatorBug"
            )

    # -- control -------------------------------------------------------------------------------------------
    def _control(self, request: Request) -> Response:
        action = request.path[len(CONTROL_PREFIX) :].strip("/")
        body = request.get_json(silent=True) or {}
        if action == "stats" and request.method == "GET":
            payload: dict[str, Any] = {**self.faults.stats(), "now_ms": self.model.clock.now_ms()}
        elif action == "log" and request.method == "GET":
            payload = {"log": list(self.faults.log)}
        elif action == "advance" and request.method == "POST":
            self.model.clock.advance(float(body.get("seconds", 0)))
            payload = {"now_ms": self.model.clock.now_ms()}
        elif action == "faults" and request.method == "POST":
            self.faults.add(Fault(**body))
            payload = {"ok": True}
        elif action == "faults" and request.method == "DELETE":
            self.faults.clear()
            payload = {"ok": True}
        elif action == "reset-stats" and request.method == "POST":
            self.faults.reset_counters()
            payload = {"ok": True}
        else:
            return Response(json.dumps({"message": f"unknown control {request.method} {action}"}), status=404)
        return Response(json.dumps(payload), content_type="application/json")


def _error(err: BatchServiceError) -> Response:
    body = json.dumps({"__type": err.code, "message": err.message})
    headers = {"x-amzn-ErrorType": err.code, **_request_id()}
    return Response(body, status=err.status, headers=headers, content_type="application/json")


def _request_id() -> dict[str, str]:
    """Every answer of the service names its request (botocore reads it into ``ResponseMetadata.RequestId``)."""
    return {"x-amzn-RequestId": str(uuid.uuid4())}
