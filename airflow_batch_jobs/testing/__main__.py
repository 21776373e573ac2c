"""``python -m airflow_batch_jobs.testing serve --port N --scenario FILE``: run the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading

from airflow_batch_jobs.testing.emulator import LOOPBACK, BatchEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_batch_jobs.testing")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the AWS Batch emulator")
    serve.add_argument("--host", default=LOOPBACK, help="address to bind (default loopback only)")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one, printed)")
    serve.add_argument("--scenario", help="YAML or JSON scenario file")
    serve.add_argument("--speed", type=float, default=1.0, help="emulated seconds per wall second")
    serve.add_argument("--seed", type=int, default=0, help="seed for injected faults")
    args = parser.parse_args(argv)

    emulator = BatchEmulator(host=args.host, port=args.port, speed=args.speed, seed=args.seed, scenario=args.scenario)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emulator:
        print(f"AWS Batch emulator listening on {emulator.endpoint_url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
