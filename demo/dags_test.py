"""`airflow db migrate`, then `airflow dags test <dag_id>` for each DAG named, one after another, in one process.

What `airflow` does for each command (its CLI parser and the command's own function), without starting Airflow
again for every DAG: each start imports Airflow and, for `dags test`, builds the in-process execution API, which
took 20 to 60 s a DAG on this machine. The DAGs still run one after another (several `dags test` at once on one
SQLite file race while registering the DAG bundle). After each DAG a line ``DAG_DONE <dag_id> <exit code>`` tells
demo/run.py which lines were whose; the exit code is what `airflow dags test` would have exited with.
"""

from __future__ import annotations

import sys
import traceback

DONE = "DAG_DONE"


def run_command(argv: list[str]) -> int:
    """One `airflow` command in this process: its exit code (0, or what it exits with, 1 if it raises)."""
    from airflow.cli import cli_parser

    args = cli_parser.get_parser().parse_args(argv)
    try:
        args.func(args)
    except SystemExit as stop:  # `dags test` exits with "DagRun failed" when the run failed
        return stop.code if isinstance(stop.code, int) else 1
    except Exception:
        traceback.print_exc(file=sys.stdout)
        return 1
    return 0


def main(dag_ids: list[str]) -> int:
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    code = run_command(["db", "migrate"])
    print(f"{DONE} db-migrate {code}", flush=True)
    if code:
        return code
    for dag_id in dag_ids:
        print(f"{DONE} {dag_id} {run_command(['dags', 'test', dag_id])}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
