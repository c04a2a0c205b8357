"""Where a study lives: an Optuna storage URL, and the lock that hands out trials one at a time.

Any SQLAlchemy URL Optuna accepts works (`sqlite:///…`, `postgresql://…`, `mysql+pymysql://…`).
The default is a SQLite file beside the design, `NAME.optuna.db`, so running the command again
resumes the study. SQLite rather than Optuna's journal file: the issue asks for it, and Optuna's
relational storage has heartbeats (a trial whose process was killed is failed after a grace period
instead of staying "running" forever), which the journal file lacks. Several local worker
processes share one SQLite file safely with WAL mode (readers never block the writer) and a long
busy timeout (a writer waits for the other instead of failing); a few rows per probe is far below
what that sustains. Many machines share a PostgreSQL or MySQL server: Optuna's distributed mode.

`claim()` makes "run N trials in total" exact with any number of processes: a worker takes the
lock, counts the trials that are finished or running, creates its trial if there is room, and
lets go. Processes on one machine with a SQLite file lock a file beside it (`NAME.optuna.db-claim`,
one for all the studies in it); PostgreSQL and MySQL use the server's advisory locks, so machines
coordinate through the database they already share.
"""
from __future__ import annotations

import fcntl
import hashlib
import sqlite3
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from netlens.errors import DesignError, RunError

HEARTBEAT_S = 10          # a running trial writes a heartbeat this often …
GRACE_S = 60              # … and is failed by the next worker when it has been silent this long
SQLITE_TIMEOUT_S = 120


@dataclass(frozen=True)
class Place:
    url: str                  # as given (with password)
    shown: str                # for reports: the password hidden
    backend: str              # sqlite | postgresql | mysql | …
    file: Path | None = None  # the SQLite file


def default_url(design) -> str:
    return f"sqlite:///{(design.base_dir / f'{design.name}.optuna.db').resolve()}"


def place(url: str) -> Place:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:
        raise DesignError("not a storage URL", path="--storage", found=url,
                          expected="an Optuna storage URL such as sqlite:///study.db or "
                                   "postgresql://user:password@host/db") from None
    backend = u.get_backend_name()
    file = Path(u.database).resolve() if backend == "sqlite" and u.database not in (None, "", ":memory:") else None
    if backend == "sqlite" and file is None:
        raise DesignError("an in-memory SQLite study cannot be shared or resumed", path="--storage",
                          found=url, suggestion="Give a file: sqlite:///study.db")
    return Place(url, u.render_as_string(hide_password=True), backend, file)


def open_storage(p: Place):
    """The Optuna storage at `p`, with heartbeats; errors become exit code 3."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs: dict = {"pool_pre_ping": True}
    if p.backend == "sqlite":
        try:
            p.file.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(p.file, timeout=SQLITE_TIMEOUT_S) as con:
                con.execute("PRAGMA journal_mode=WAL")
            p.file.with_name(p.file.name + "-claim").touch()   # the claim lock beside it, too
        except (OSError, sqlite3.Error) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise DesignError(f"cannot create or open the SQLite study `{p.file}`: {why}",
                              path="--storage", found=p.shown,
                              suggestion="Choose a writable place: --storage sqlite:///PATH/study.db, "
                                         "or move the design to a writable folder.") from None
        kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    last: Exception | None = None
    for _ in range(5):           # two processes creating the tables at once may collide once
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(p.url, engine_kwargs=kwargs,
                                                     heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
            if p.backend == "sqlite":
                _relaxed_sync(storage.engine)
            return storage
        except (SQLAlchemyError, ValueError) as e:
            last = e
            time.sleep(0.5)
        except ImportError as e:       # Optuna wraps the driver's ModuleNotFoundError
            missing = getattr(e.__cause__, "name", None) or getattr(e, "name", None) or "for it"
            raise RunError(f"the storage {p.shown} needs a database driver that is not installed "
                           f"(`{missing}`); {driver_hint(p.url)}") from None
    raise RunError(f"cannot open the storage {p.shown}: {last.__class__.__name__}: "
                   f"{str(last).splitlines()[0]}")


#: pip packages of the database drivers SQLAlchemy picks (by the URL's `+driver`, else its default)
DRIVERS = {"psycopg": '"netlens[postgres]"', "psycopg2": "psycopg2-binary",
           "pg8000": "pg8000", "asyncpg": "asyncpg", "mysqldb": "mysqlclient", "pymysql": "pymysql",
           "mysqlconnector": "mysql-connector-python", "mariadbconnector": "mariadb",
           "pyodbc": "pyodbc", "oracledb": "oracledb", "cx_oracle": "cx_Oracle"}


def driver_hint(url: str) -> str:
    """What to install for this URL: SQLAlchemy 2 reads `postgresql://` as psycopg (3),
    `postgresql+psycopg2://` as psycopg2, `mysql://` as mysqlclient."""
    from sqlalchemy.engine import make_url

    try:
        driver = make_url(url).get_dialect().driver
    except Exception:          # the dialect itself is unknown to this SQLAlchemy
        return "check the URL's `dialect+driver://` part"
    hint = f"install it with `pip install {DRIVERS.get(driver, driver)}`"
    if driver == "psycopg":
        hint += " (psycopg 3; or write postgresql+psycopg2:// to use an installed psycopg2)"
    return hint


def _relaxed_sync(engine) -> None:
    """`synchronous=NORMAL` on every connection: in WAL mode a commit no longer waits for the disk
    (a few ms, several times per trial), and a crash of the process still loses nothing — only a
    power cut could lose the last commits. SQLite's own recommendation for WAL."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _pragma(con, _record) -> None:
        con.execute("PRAGMA synchronous=NORMAL")

    engine.dispose()         # connections opened before the listener reconnect with it


def fail_stale(study) -> None:
    """Fail the running trials whose process stopped sending heartbeats (killed, machine lost)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


# -- claiming trials one at a time -------------------------------------------------------------
def _key(study: str) -> int:
    return int.from_bytes(hashlib.sha1(f"netlens:{study}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def claim(p: Place, study: str):
    """Hold the study's trial-claiming lock. Yields a function that releases it early (a worker
    lets go as soon as its trial exists, not when it finishes)."""
    if p.backend == "sqlite":
        # beside the database, never the database itself: SQLite's own POSIX locks on it would be
        # dropped when this process closed another descriptor of the same file
        lock = p.file.with_name(p.file.name + "-claim")
        with open(lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            held = [True]

            def release() -> None:
                if held[0]:
                    held[0] = False
                    fcntl.flock(f, fcntl.LOCK_UN)
            try:
                yield release
            finally:
                release()
        return
    if p.backend not in ("postgresql", "mysql", "mariadb"):
        yield lambda: None           # no lock available: two workers may rarely overshoot by one
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(p.url, poolclass=NullPool)
    con = engine.connect()
    if p.backend == "postgresql":
        get, put, args = "SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)", {"k": _key(study)}
    else:
        get, put, args = "SELECT GET_LOCK(:k, 600)", "SELECT RELEASE_LOCK(:k)", {"k": f"netlens:{study}"[:64]}
    con.execute(text(get), args)
    held = [True]

    def release() -> None:
        if held[0]:
            held[0] = False
            try:
                con.execute(text(put), args)
                con.commit()
            finally:
                con.close()
                engine.dispose()

    try:
        yield release
    finally:
        release()
