"""A throwaway PostgreSQL server for the end-to-end tests: Debian's server programs (installed by ``.ci/postgres`` when
missing), a new data directory and a free port on 127.0.0.1, password authentication; stopped and deleted after."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg2

from tests.e2e.real_airflow import free_port

REPO = Path(__file__).resolve().parents[2]
SERVER_USER = "postgres"  # PostgreSQL refuses to run as root; Debian's package creates this account
DATABASE = "airflow"
ROLE = "airflow"


def server_bindir() -> Path:
    """Where ``initdb`` and ``postgres`` are, installing Debian's package first if they are missing."""
    done = subprocess.run([REPO / ".ci" / "postgres"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f".ci/postgres failed ({done.returncode}):\n{done.stderr}")
    return Path(done.stdout.strip())


class PostgresServer:
    """One server, as the caller's user, or as ``postgres`` when the caller is root (CI)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.base = Path(tempfile.mkdtemp(prefix="e2e-postgres-"))  # not pytest's tmp_path: 0700 dirs owned by root
        self.log = self.base / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"PostgreSQL does not run as root, and there is no {SERVER_USER!r} account to run it as: "
                    "install Debian's postgresql package (it creates one), or run the test as another user."
                ) from None
            os.chown(self.base, account.pw_uid, account.pw_gid)
            self._as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the test's database (psycopg2, Airflow's PostgreSQL driver)."""
        return f"postgresql+psycopg2://{ROLE}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def connect(self, dbname: str = DATABASE) -> Any:
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=ROLE, password=self.password, dbname=dbname, connect_timeout=5
        )

    def start(self) -> None:
        data, pwfile = self.base / "data", self.base / "pwfile"
        pwfile.touch(mode=0o600)  # readable by the server's account only
        pwfile.write_text(self.password)
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        initdb: list[str | Path] = [self.bindir / "initdb", "-D", data, "-U", ROLE, f"--pwfile={pwfile}"]
        initdb += ["--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"]
        subprocess.run(initdb, check=True, capture_output=True, timeout=120, **self._as)
        pwfile.unlink()
        # durability off: the data dies with the test, and a fsync per commit costs seconds on a busy disk
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        command: list[str | Path] = [self.bindir / "postgres", "-D", data]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as
            )
        self._wait_ready()
        connection = self.connect(dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            connection.close()

    def _wait_ready(self, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                self.connect(dbname="postgres").close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> int | None:
        """Fast shutdown (SIGINT: clients disconnected, no waiting for them), then delete everything."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            try:
                code = self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)
        return code
