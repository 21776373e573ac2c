"""A real Airflow on loopback for the end-to-end tests: its components as separate processes (LocalExecutor), and a
tiny REST client to drive and read them.

On Airflow 2.11 the components and the API differ: the webserver serves the REST API (v1, basic auth, with a user
made at migration), the scheduler parses the DAGs itself, and a SQLite metadata database allows only the
SequentialExecutor (tasks run one at a time; deferred waits still share the triggerer).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

DAGS = Path(__file__).resolve().parent / "dags"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
TRIGGERER = [AIRFLOW, "triggerer", "--skip-serve-logs"]
AIRFLOW_2 = version("apache-airflow").startswith("2.")
COMPONENTS = (
    {
        "webserver": [AIRFLOW, "webserver"],
        "scheduler": [AIRFLOW, "scheduler", "--skip-serve-logs"],
        "triggerer": TRIGGERER,
    }
    if AIRFLOW_2
    else {
        "api-server": [AIRFLOW, "api-server"],
        "scheduler": [AIRFLOW, "scheduler", "--skip-serve-logs"],
        "dag-processor": [AIRFLOW, "dag-processor"],
        "triggerer": TRIGGERER,
    }
)
HEALTH = "/health" if AIRFLOW_2 else "/monitor/health"
# Airflow 2.11's REST API user (basic auth), made by migrate()
API_USER = ("e2e-admin", "e2e-password-not-for-production")
FINAL_STATES = ("success", "failed", "skipped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gunicorn_has_control_socket() -> bool:
    parts = version("gunicorn").split(".")
    return (int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0) >= (25, 1)


def airflow_env(home: Path, port: int, aws_connection: str) -> dict[str, str]:
    """The environment of every component: loopback only, quick heartbeats, the ``aws_default`` connection given."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-test-secret-not-for-production",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection,
        # Airflow 3.0 leaves the token's issuer unset, which PyJWT >= 2.11 refuses ("Issuer (iss) must be a string")
        "AIRFLOW__API_AUTH__JWT_ISSUER": "airflow-batch-jobs-e2e",
        **(
            {
                "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
                "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
                "AIRFLOW__WEBSERVER__WORKERS": "1",
                "AIRFLOW__WEBSERVER__SECRET_KEY": "e2e-test-secret-not-for-production",
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
                "AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT": "True",
                "PATH": f"{Path(AIRFLOW).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # executors run `airflow`
                # no gunicorn control socket in the user's home (gunicorn >= 25.1 makes one)
                **({"GUNICORN_CMD_ARGS": "--no-control-socket"} if _gunicorn_has_control_socket() else {}),
            }
            if AIRFLOW_2
            else {}
        ),
    }


def migrate(env: Mapping[str, str]) -> None:
    done = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (
        f"airflow db migrate failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    if AIRFLOW_2:
        user, password = API_USER
        names = ["-f", "e2e", "-l", "e2e", "-e", "e2e@example.com"]
        command = [AIRFLOW, "users", "create", "-u", user, "-p", password, "-r", "Admin", *names]
        made = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, f"airflow users create failed:\n{made.stdout[-3000:]}{made.stderr[-3000:]}"


@contextlib.contextmanager
def running(
    home: Path, env: dict[str, str], port: int, components: Mapping[str, list[str]] = COMPONENTS
) -> Iterator[Airflow]:
    """A migrated metadata database and ``components`` running until the block ends (the API server answering
    first); every component stopped after."""
    migrate(env)
    af = Airflow(home, env, port)
    af.start(components)
    try:
        af.wait_for("the api-server", lambda: af.request("GET", HEALTH))
        yield af
    finally:
        codes = af.stop()
        assert all(code is not None for code in codes.values()), codes  # every component stopped


class Airflow:
    """The running components and a tiny REST client for them."""

    def __init__(self, home: Path, env: dict[str, str], port: int) -> None:
        self.home = home
        self.env = env
        self.base = f"http://127.0.0.1:{port}/api/{'v1' if AIRFLOW_2 else 'v2'}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, components: Mapping[str, list[str]] = COMPONENTS, env: Mapping[str, str] | None = None) -> None:
        """Start ``components`` (name -> command), each in its own process group, with ``env`` on top of ours."""
        for name, command in components.items():
            log = (self.home / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                command,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> list[int]:
        """SIGKILL a component and every process under it at once, as when its machine dies; returns their pids."""
        proc = self.procs.pop(name)
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        for member in tree:
            member.kill()
        psutil.wait_procs(tree, timeout=10)
        self.killed[name] = proc
        return [member.pid for member in tree]

    def stop(self) -> dict[str, int | None]:
        """SIGTERM each component we started (its own process group), then SIGKILL what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        return {name: proc.poll() for name, proc in {**self.procs, **self.killed}.items()}

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.home.glob("*.log"))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if AIRFLOW_2:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(API_USER).encode()).decode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float = 180) -> Any:
        """Poll ``probe`` every second until it gives something true; every component we run must stay up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                assert proc.poll() is None, f"{name} exited with {proc.returncode}\n{self.logs()}"
            try:
                result = probe()
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                result = None
            if result:
                return result
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}\n{self.logs()}")

    def trigger_run(self, dag_id: str) -> str:
        """Wait for the DAG to be parsed, start a run of it; returns the run id."""
        self.wait_for(f"{dag_id} parsed", lambda: self.request("GET", f"/dags/{dag_id}"))
        body = {} if AIRFLOW_2 else {"logical_date": None}  # 2.11 sets the logical date itself; 3.x needs the key
        return str(self.request("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str = "wait") -> dict[str, Any]:
        return dict(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """Every task instance of a run, by task id."""
        page = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")
        assert page["total_entries"] <= 100, page["total_entries"]
        return {ti["task_id"]: ti for ti in page["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str = "wait", key: str = "return_value") -> Any:
        """An XCom value, deserialized (Airflow 2.11 answers a string unless asked for the value itself)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        value = self.request("GET", path + ("?deserialize=true&stringify=false" if AIRFLOW_2 else ""))["value"]
        return json.loads(value) if isinstance(value, str) else value

    def task_state(self, dag_id: str, run_id: str, task_id: str = "wait") -> str | None:
        return self.task_instance(dag_id, run_id, task_id).get("state")

    def triggerer_job_ids(self) -> list[int]:
        """The triggerers that have registered with the metadata database, oldest first."""
        jobs = self.request("GET", "/jobs?job_type=TriggererJob&order_by=id&limit=100")["jobs"]
        return [int(job["id"]) for job in jobs]

    def scheduler_saw_defer_exit(self, dag_id: str, run_id: str, task_id: str = "wait") -> bool:
        """Whether the scheduler has drained the executor's "success" for the worker that exited to defer. Airflow
        3.3.2 fails a resumed task whose stale defer-exit event arrives once it is queued again (apache/airflow#67287,
        the queued-state variant of #66374), so the tests let jobs finish only after this."""
        key = f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', try_number=1"
        text = (self.home / "scheduler.log").read_text(errors="replace")
        return any("Received executor event with state success" in line and key in line for line in text.splitlines())

    def task_log(self, dag_id: str, run_id: str, task_id: str = "wait") -> str:
        """The task's log of its latest try, read over REST (what a user sees in the UI)."""
        ti = self.task_instance(dag_id, run_id, task_id)
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{ti['try_number']}?full_content=true"
        return json.dumps(self.request("GET", path))
