"""``python -m airflow_batch_jobs.testing serve``: the built-in scenarios (shipped in the wheel, so the README's
quickstart needs no source checkout) and the connection line it prints for Airflow."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import boto3
import pytest

from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.testing.scenario import Scenario, built_in_scenarios

if TYPE_CHECKING:
    from pathlib import Path

SERVE = [sys.executable, "-m", "airflow_batch_jobs.testing", "serve"]


def test_the_demo_scenario_is_built_in_and_loads_by_name() -> None:
    assert "demo" in built_in_scenarios()
    with BatchEmulator(scenario="demo") as emu:
        emu.advance(200)  # the scenario's last submission is at 90 s, its longest job 35 s
        names = {s["jobName"] for s in emu.client().list_jobs(jobQueue="nightly", jobStatus="FAILED")["jobSummaryList"]}
    assert {"etl-publish", "ingest"} <= names


def test_a_file_of_that_name_wins_over_a_built_in_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "demo").write_text("queues: [mine]\n")
    monkeypatch.chdir(tmp_path)
    assert Scenario.load("demo").data == {"queues": ["mine"]}


def test_an_unknown_scenario_names_the_argument_and_the_built_in_ones() -> None:
    with pytest.raises(ValueError, match=r"scenario='nightly' is neither a file nor a built-in scenario.*demo"):
        Scenario.load("nightly")
    done = subprocess.run([*SERVE, "--scenario", "nightly"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr  # argparse's usage error, not a traceback
    assert "scenario='nightly' is neither a file nor a built-in scenario" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_prints_the_connection_line_to_export_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [*SERVE, "--scenario", "demo", "--speed", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("AWS Batch emulator listening on http://127.0.0.1:"), lines
        assert "scenario demo" in lines[0], lines
        export = lines[2].strip()
        assert export.startswith("export AIRFLOW_CONN_AWS_DEFAULT="), lines
        # what the shell would put in the variable: the connection Airflow reads
        (assignment,) = shlex.split(export.removeprefix("export "))
        connection = json.loads(assignment.split("=", 1)[1])
        assert connection["conn_type"] == "aws"
        assert len(connection["password"]) >= 8  # long enough for Airflow's secret masker
        client = boto3.client(
            "batch",
            endpoint_url=connection["extra"]["endpoint_url"],
            region_name=connection["extra"]["region_name"],
            aws_access_key_id=connection["login"],
            aws_secret_access_key=connection["password"],
        )
        everything = [{"name": "AFTER_CREATED_AT", "values": ["0"]}]
        for _ in range(100):  # the demo's jobs are submitted over 90 emulated seconds: 4.5 s at x20
            names = {s["jobName"] for s in client.list_jobs(jobQueue="nightly", filters=everything)["jobSummaryList"]}
            if "etl-publish" in names:
                break
            time.sleep(0.2)
        assert {"etl-extract", "fanout", "ingest", "etl-transform", "etl-load", "etl-publish"} <= names
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
