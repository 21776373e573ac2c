"""How long the first trigger's AWS client holds the triggerer's event loop: the longest stretch in which a 1 ms timer
could not fire while the client is made and lists one page, in a fresh process (nothing loaded yet), for

- the amazon provider's hook alone (``AwsBaseHook(client_type="batch").get_async_conn()``, then entering the client:
  aiobotocore parses botocore's models on the loop), as the trigger made its client before #14;
- the trigger's client pool (``ClientPool.lease`` with ``BatchJobsHook``: the models loaded in a thread first);
- the same once the models are loaded (a later client in the process): what remains of the lag is not the models.
  What the thread leaves is the GIL: each JSON file is parsed in one C call that holds it (the largest, botocore's
  endpoints, for tens of milliseconds).

    .venv/bin/python -m benchmarks.first_client
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

RUNS = 5
WAYS = ("amazon hook alone", "ClientPool.lease", "ClientPool.lease, models loaded before")


async def worst_lag(work: Any) -> float:
    """The longest the loop went without running a 1 ms ticker while ``work`` ran (seconds)."""
    worst, done = 0.0, asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    await work()
    done.set()
    await ticking
    return worst


async def amazon_hook_alone() -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    context = await AwsBaseHook(client_type="batch").get_async_conn()
    client = await context.__aenter__()
    try:
        await client.get_paginator("list_jobs").paginate(jobQueue="queue").build_full_result()
    finally:
        await context.__aexit__(None, None, None)


async def client_pool() -> None:
    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
    from airflow_batch_jobs.triggers.shared_poll import ClientPool

    async with ClientPool.lease("benchmark", BatchJobsHook()) as client:
        await client.get_paginator("list_jobs").paginate(jobQueue="queue").build_full_result()


def child(way: str) -> None:
    """One measurement in this (fresh) process: Airflow and the provider imported, no client made yet."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook  # imports are not what is measured

    from airflow_batch_jobs.triggers.shared_poll import ClientPool
    from benchmarks.common import quiet

    assert AwsBaseHook and ClientPool

    quiet()
    if way == WAYS[2]:
        from airflow_batch_jobs.hooks.models import warm_models

        warm_models("batch")
    work = amazon_hook_alone if way == WAYS[0] else client_pool
    print(json.dumps(asyncio.run(worst_lag(work))))


def main() -> None:
    from airflow_batch_jobs.testing import BatchEmulator
    from benchmarks.common import quiet

    quiet()
    with BatchEmulator() as emu:
        emu.setup()
        emu.submit("etl")
        env = {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}
        print(
            f"The event loop's worst lag while the first client is made and lists a page (fresh process; {RUNS} runs)"
        )
        print("| how the client is made | worst lag, median | worst lag, max |")
        print("|---|---|---|")
        for way in WAYS:
            lags = sorted(
                json.loads(
                    subprocess.run(
                        [sys.executable, "-m", "benchmarks.first_client", way],
                        env={**os.environ, **env},
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                for _ in range(RUNS)
            )
            print(f"| {way} | {lags[len(lags) // 2] * 1000:.0f} ms | {lags[-1] * 1000:.0f} ms |")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1])
    else:
        main()
