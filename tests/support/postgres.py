"""Pytest plugin: a throwaway PostgreSQL cluster on loopback, and stores on both backends.

The session starts its own cluster (initdb into a temporary directory, `pg_ctl start` on a
free 127.0.0.1 port, its unix socket in that directory) and stops it at the end; each test
that asks for PostgreSQL gets a fresh database in it. initdb refuses to run as root, so as
root the server runs as Debian's `postgres` system user.

Without PostgreSQL's binaries the PostgreSQL tests skip locally but fail when the
environment variable CI is set: CI (`.ci/run`) installs them, so there they must run.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

from ledger import Store

PG_USER = "postgres"  # the cluster's superuser, and the system user that runs it as root
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
STOP_TIMEOUT = 30
DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, else Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        bindir = Path(on_path).resolve().parent
        if (bindir / "pg_ctl").exists():
            return bindir
    candidates = [
        Path(p).parent for p in glob.glob(f"{DEBIAN_BINDIRS}/initdb") if Path(p).is_file()
    ]

    def version(bindir: Path) -> tuple[int, ...]:
        name = bindir.parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates = [c for c in candidates if (c / "pg_ctl").exists()]
    return max(candidates, key=version) if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running throwaway cluster; `url(db)` is the SQLAlchemy URL of one of its databases."""

    bindir: Path
    base: Path
    port: int = 0
    run_as: str | None = None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        for name in ("PGHOST", "PGPORT", "PGDATA", "PGUSER", "PGDATABASE", "PGPASSWORD"):
            env.pop(name, None)
        return subprocess.run(
            command,
            cwd=self.base,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{log}"
            )

    def init(self) -> None:
        result = self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            PG_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-locale",
            "--no-sync",
            timeout=120,
        )
        self._check(result, "initdb")

    def start(self) -> None:
        """Start on a free loopback port; `pg_ctl -w` polls until it accepts connections
        or the deadline passes. A port taken in the meantime is retried with another."""
        for attempt in range(3):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={self.port}",
                    f"-c unix_socket_directories={self.base}",
                    "-c fsync=off",  # a throwaway cluster: durability is SQLite's concern here
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
            )
            result = self._run(
                "pg_ctl",
                "start",
                "--pgdata",
                str(self.data),
                "--log",
                str(self.log),
                "--wait",
                "--timeout",
                str(START_TIMEOUT),
                "-o",
                options,
                timeout=START_TIMEOUT + 10,
            )
            if result.returncode == 0:
                return
            if attempt == 2 or "could not bind" not in self.log.read_text(errors="replace"):
                self._check(result, "pg_ctl start")

    def stop(self) -> None:
        result = self._run(
            "pg_ctl",
            "stop",
            "--pgdata",
            str(self.data),
            "--mode",
            "immediate",
            "--wait",
            "--timeout",
            str(STOP_TIMEOUT),
            timeout=STOP_TIMEOUT + 10,
        )
        self._check(result, "pg_ctl stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=PG_USER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self) -> str:
        name = f"test_{next(self._names)}"
        with self.admin() as connection:
            # PostgreSQL 15+: copying template1's files is about twice as fast as WAL_LOG
            fast = " STRATEGY FILE_COPY" if connection.info.server_version >= 150000 else ""
            connection.execute(f'CREATE DATABASE "{name}"{fast}')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def running_cluster(bindir: Path, run_as: str | None, prefix: str) -> Iterator[PostgresCluster]:
    """A new cluster in a temporary folder named `prefix`..., started, run by `run_as` (None:
    this user); stopped and removed afterwards. The tests' fixture and the bench share it."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        if run_as is not None:
            shutil.chown(base, user=run_as, group=pwd.getpwnam(run_as).pw_gid)
        cluster = PostgresCluster(bindir=bindir, base=base, run_as=run_as)
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the PostgreSQL tests (.ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of its own for the session, on 127.0.0.1, stopped at the end."""
    bindir = find_bindir()
    if bindir is None:
        _unavailable("PostgreSQL is not installed (no initdb/pg_ctl)")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            _unavailable(f"running as root and there is no {PG_USER!r} user to run PostgreSQL")
        run_as = PG_USER
    with running_cluster(bindir, run_as, "ledger-pg-") as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database for this test, dropped after it."""
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A store opened on each backend (its migrations applied), closed after the test."""
    opened = Store(store_url)
    try:
        yield opened
    finally:
        opened.close()
