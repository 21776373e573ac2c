"""Emulator CPU for one complete paginated listing of 10,000 jobs through boto3 (target: well under 1 s).

Runs the emulator as its own process (the CLI) so that its CPU time is read apart from the client's:
    .venv/bin/python benchmarks/emulator_listing.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import boto3

JOBS = 10_000


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    scenario = {
        "queues": ["bench"],
        "job_definitions": [{"name": "jd"}],
        "submit": [{"at": 0, "name": "job", "queue": "bench", "definition": "jd", "count": JOBS}],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(scenario, handle)
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_batch_jobs.testing", "serve", "--scenario", handle.name, "--speed", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().rsplit(" ", 1)[1].strip()
        client = boto3.client("batch", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="y")  # fmt: skip
        paginator = client.get_paginator("list_jobs")
        for label, params, page in (
            (
                "filter AFTER_CREATED_AT=0, pages of 100",
                {"filters": [{"name": "AFTER_CREATED_AT", "values": ["0"]}]},
                100,
            ),
            ("filter JOB_NAME=job-*, pages of 100", {"filters": [{"name": "JOB_NAME", "values": ["job-*"]}]}, 100),
        ):
            before, wall = cpu_seconds(proc.pid), time.monotonic()
            pages = list(paginator.paginate(jobQueue="bench", PaginationConfig={"PageSize": page}, **params))
            cpu = cpu_seconds(proc.pid) - before
            count = sum(len(p["jobSummaryList"]) for p in pages)
            print(f"{label:42s} jobs={count:6d} pages={len(pages):4d} emulator CPU={cpu:5.2f} s "
                  f"wall={time.monotonic() - wall:5.2f} s")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
