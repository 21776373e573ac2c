"""``python -m airflow_batch_jobs.testing serve [--scenario demo|FILE] [--speed N] [--events]``: run the emulator
until Ctrl-C.

It prints where it listens and the ``export AIRFLOW_CONN_AWS_DEFAULT=...`` line that points Airflow's default
``aws`` connection at it, to paste into the shell that runs Airflow. With ``--events`` (or a scenario's
``events: true``) it also publishes the jobs' state-change events to an SQS queue and prints
``export BATCH_EVENTS_QUEUE_URL=...`` (the connection line then sends SQS calls to that queue's endpoint).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import threading

from airflow_batch_jobs.testing.emulator import LOOPBACK, BatchEmulator
from airflow_batch_jobs.testing.scenario import built_in_scenarios

CONNECTION_VARIABLE = "AIRFLOW_CONN_AWS_DEFAULT"
EVENTS_QUEUE_VARIABLE = "BATCH_EVENTS_QUEUE_URL"


def export_line(emulator: BatchEmulator) -> str:
    """The shell line that makes ``aws_default`` reach the emulator."""
    return f"export {CONNECTION_VARIABLE}={shlex.quote(emulator.airflow_connection())}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_batch_jobs.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the AWS Batch emulator")
    serve.add_argument("--host", default=LOOPBACK, help="address to bind (default loopback only)")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one, printed)")
    serve.add_argument(
        "--scenario",
        help=f"a YAML or JSON scenario file, or a built-in scenario: {', '.join(built_in_scenarios())}",
    )
    serve.add_argument("--speed", type=float, default=1.0, help="emulated seconds per wall second")
    serve.add_argument("--seed", type=int, default=0, help="seed for injected faults")
    serve.add_argument(
        "--events",
        action="store_true",
        default=None,
        help="publish job state-change events to an SQS queue (moto, on loopback) and print its URL",
    )
    args = parser.parse_args(argv)

    try:
        emulator = BatchEmulator(
            host=args.host,
            port=args.port,
            speed=args.speed,
            seed=args.seed,
            scenario=args.scenario,
            events=args.events,
        )
    except ValueError as err:
        parser.error(str(err))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emulator:
        scenario = f", scenario {args.scenario}" if args.scenario else ""
        print(f"AWS Batch emulator listening on {emulator.endpoint_url}{scenario} (x{args.speed:g} speed)", flush=True)
        print("Point Airflow's aws_default connection at it (in the shell that runs Airflow):", flush=True)
        print(export_line(emulator), flush=True)
        if emulator.events is not None:
            print("Job state-change events go to this SQS queue (same region and credentials):", flush=True)
            print(f"export {EVENTS_QUEUE_VARIABLE}={shlex.quote(emulator.events_queue_url)}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
