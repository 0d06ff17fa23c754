"""The embedded online store: one SQLite file, so a laptop needs no server.

The file is ``<base_dir>/online.sqlite`` (next to the offline DuckDB file), opened with
the standard library's sqlite3 in WAL mode: readers never block the writer nor each
other, and several processes (a server taking pushes, a materialization) share it.

Schema (every row carries the project, so projects can share a file):

    versions(project, version)                    staged and published versions
    published(project, version)                   the pointer: one row per project
    states(project, version, view, entity, state)  entity = encode_entity_key bytes
    metadata(project, version, name, value)

Atomic visibility: `publish` switches the pointer in one transaction and deletes the
other versions afterwards; a read runs inside one read transaction, which in WAL mode
sees one committed snapshot, so it reads one version whole. Atomic updates: `update_many`
runs in ``BEGIN IMMEDIATE``, which takes the database's write lock before reading, so
concurrent updates (threads or processes) serialize instead of losing writes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from featurestore.errors import OnlineStoreUnavailable
from featurestore.online.base import (
    OnlineStore,
    ReadResult,
    Request,
    UpdateFunction,
    batched,
    check_distinct,
    check_project,
    check_update_result,
    check_version,
    check_view,
)
from featurestore.online.entity_keys import encode_entity_key

# A writer waits this long for another process's write lock before giving up.
_BUSY_TIMEOUT_S = 10.0
# Rows per write transaction: short lock holds keep pushes flowing during a load.
_ROWS_PER_TRANSACTION = 5000
# Entity keys per IN (...) list, well below SQLite's bound on query parameters.
_KEYS_PER_QUERY = 500

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS versions (
        project TEXT NOT NULL, version TEXT NOT NULL, PRIMARY KEY (project, version))""",
    """CREATE TABLE IF NOT EXISTS published (
        project TEXT NOT NULL PRIMARY KEY, version TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS states (
        project TEXT NOT NULL, version TEXT NOT NULL, view TEXT NOT NULL,
        entity BLOB NOT NULL, state BLOB NOT NULL,
        PRIMARY KEY (project, version, view, entity))""",
    """CREATE TABLE IF NOT EXISTS metadata (
        project TEXT NOT NULL, version TEXT NOT NULL, name TEXT NOT NULL,
        value BLOB NOT NULL, PRIMARY KEY (project, version, name))""",
)
_UPSERT_STATE = """INSERT INTO states (project, version, view, entity, state)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (project, version, view, entity) DO UPDATE SET state = excluded.state"""
_UPSERT_METADATA = """INSERT INTO metadata (project, version, name, value) VALUES (?, ?, ?, ?)
    ON CONFLICT (project, version, name) DO UPDATE SET value = excluded.value"""

_EncodedRequest = tuple[str, bytes]


class LocalOnlineStore(OnlineStore):
    """Online store in a SQLite file (layout and guarantees in the module docstring).

    Args:
        path: the database file; created with its parent folder if missing.
        project: the project name; rows of other projects in the file are ignored.
    """

    def __init__(self, path: Path, project: str) -> None:
        self._path = Path(path)
        self._project = check_project(project)
        # sqlite3 connections must not run interleaved transactions from several
        # threads, so each thread gets its own connection (and each process: a
        # connection inherited through fork is not safe to use).
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OnlineStoreUnavailable(
                f"local online store {self._path}: cannot create its folder: {error}"
            ) from error
        with self._transaction(immediate=True) as connection:
            for statement in _SCHEMA:
                connection.execute(statement)

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def write_version(
        self,
        version: str,
        items: Iterable[tuple[str, tuple, bytes]],
        metadata: Mapping[str, bytes] | None = None,
    ) -> int:
        """See `OnlineStore.write_version`; one transaction per 5000 states."""
        check_version(version)
        with self._transaction(immediate=True) as connection:
            if self._published(connection) == version:
                raise ValueError(f"cannot stage version {version!r}: it is the published one")
            connection.execute("INSERT OR IGNORE INTO versions VALUES (?, ?)",
                               (self._project, version))
        written = 0
        for batch in batched(items, _ROWS_PER_TRANSACTION):
            # Encode before taking the write lock, so the lock is held for I/O only.
            rows = [(self._project, version, check_view(view), encode_entity_key(entity), state)
                    for view, entity, state in batch]
            with self._transaction(immediate=True) as connection:
                connection.executemany(_UPSERT_STATE, rows)
            written += len(rows)
        if metadata:
            with self._transaction(immediate=True) as connection:
                connection.executemany(_UPSERT_METADATA, [
                    (self._project, version, name, value) for name, value in metadata.items()
                ])
        return written

    def publish(self, version: str) -> None:
        """See `OnlineStore.publish`."""
        check_version(version)
        with self._transaction(immediate=True) as connection:
            staged = connection.execute(
                "SELECT 1 FROM versions WHERE project = ? AND version = ?",
                (self._project, version),
            ).fetchone()
            if staged is None:
                raise ValueError(f"cannot publish version {version!r}: it was not staged")
            connection.execute(
                "INSERT INTO published VALUES (?, ?)"
                " ON CONFLICT (project) DO UPDATE SET version = excluded.version",
                (self._project, version),
            )
            others = [row[0] for row in connection.execute(
                "SELECT version FROM versions WHERE project = ? AND version <> ?",
                (self._project, version),
            )]
        for other in others:
            self._drop(other)

    def discard(self, version: str) -> None:
        """See `OnlineStore.discard`."""
        check_version(version)
        if self.current_version() == version:
            raise ValueError(f"cannot discard version {version!r}: it is the published one")
        self._drop(version)

    def read(self, requests: Sequence[Request], metadata_names: Sequence[str] = ()) -> ReadResult:
        """See `OnlineStore.read`: one read transaction, one query per view and 500 keys."""
        encoded = _encode_requests(requests)
        names = list(metadata_names)
        with self._transaction() as connection:
            version = self._published(connection)
            if version is None:
                return ReadResult(None, [None] * len(encoded), dict.fromkeys(names))
            found = self._select_states(connection, version, encoded)
            metadata = self._select_metadata(connection, version, names)
        return ReadResult(version, [found.get(request) for request in encoded], metadata)

    def update_many(
        self,
        requests: Sequence[Request],
        fn: UpdateFunction,
        metadata_names: Sequence[str] = (),
    ) -> bool:
        """See `OnlineStore.update_many`: read and write inside ``BEGIN IMMEDIATE``."""
        check_distinct(requests)
        encoded = _encode_requests(requests)
        names = list(metadata_names)
        with self._transaction(immediate=True) as connection:
            version = self._published(connection)
            if version is None:
                return False
            found = self._select_states(connection, version, encoded)
            metadata = self._select_metadata(connection, version, names)
            new_states, new_metadata = check_update_result(
                fn([found.get(request) for request in encoded], metadata), len(encoded), names
            )
            connection.executemany(_UPSERT_STATE, [
                (self._project, version, view, entity, state)
                for (view, entity), state in zip(encoded, new_states, strict=True)
                if state is not None
            ])
            connection.executemany(_UPSERT_METADATA, [
                (self._project, version, name, value) for name, value in new_metadata.items()
            ])
        return True

    def current_version(self) -> str | None:
        """See `OnlineStore.current_version`."""
        with self._transaction() as connection:
            return self._published(connection)

    def ping(self) -> bool:
        """See `OnlineStore.ping`."""
        with self._transaction() as connection:
            connection.execute("SELECT 1 FROM published LIMIT 1").fetchall()
        return True

    def memory_usage(self, view: str, entity: tuple) -> int | None:
        """Bytes of the stored entity key and state (SQLite's page overhead not counted)."""
        encoded_view, encoded_entity = _encode_requests([(view, entity)])[0]
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT length(s.entity) + length(s.state) FROM states AS s"
                " JOIN published AS p ON p.project = s.project AND p.version = s.version"
                " WHERE s.project = ? AND s.view = ? AND s.entity = ?",
                (self._project, encoded_view, encoded_entity),
            ).fetchone()
        return None if row is None else int(row[0])

    def close(self) -> None:
        """See `OnlineStore.close`: closes the connections of every thread."""
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def _published(self, connection: sqlite3.Connection) -> str | None:
        row = connection.execute(
            "SELECT version FROM published WHERE project = ?", (self._project,)
        ).fetchone()
        return None if row is None else row[0]

    def _select_states(
        self, connection: sqlite3.Connection, version: str, encoded: list[_EncodedRequest]
    ) -> dict[_EncodedRequest, bytes]:
        by_view: dict[str, list[bytes]] = {}
        for view, entity in encoded:
            by_view.setdefault(view, []).append(entity)
        found: dict[_EncodedRequest, bytes] = {}
        for view, entities in by_view.items():
            for chunk in batched(entities, _KEYS_PER_QUERY):
                rows = connection.execute(
                    "SELECT entity, state FROM states WHERE project = ? AND version = ?"
                    f" AND view = ? AND entity IN ({', '.join('?' * len(chunk))})",
                    (self._project, version, view, *chunk),
                )
                found.update(((view, entity), state) for entity, state in rows)
        return found

    def _select_metadata(
        self, connection: sqlite3.Connection, version: str, names: list[str]
    ) -> dict[str, bytes | None]:
        metadata: dict[str, bytes | None] = dict.fromkeys(names)
        for chunk in batched(names, _KEYS_PER_QUERY):
            metadata.update(connection.execute(
                "SELECT name, value FROM metadata WHERE project = ? AND version = ?"
                f" AND name IN ({', '.join('?' * len(chunk))})",
                (self._project, version, *chunk),
            ))
        return metadata

    def _drop(self, version: str) -> None:
        """Delete a version's rows in short transactions, its `versions` row last.

        Deleting the `versions` row last means an interrupted drop leaves the version
        listed, so the next publish finishes the job instead of leaking rows.
        """
        key = (self._project, version)
        deleted = _ROWS_PER_TRANSACTION
        while deleted == _ROWS_PER_TRANSACTION:
            with self._transaction(immediate=True) as connection:
                deleted = connection.execute(
                    "DELETE FROM states WHERE rowid IN (SELECT rowid FROM states"
                    " WHERE project = ? AND version = ? LIMIT ?)",
                    (*key, _ROWS_PER_TRANSACTION),
                ).rowcount
        with self._transaction(immediate=True) as connection:
            connection.execute("DELETE FROM metadata WHERE project = ? AND version = ?", key)
            connection.execute("DELETE FROM versions WHERE project = ? AND version = ?", key)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            return connection
        with self._unavailable_on_error():
            connection = sqlite3.connect(
                self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL is safe from corruption in WAL mode; this store is a cache of the
            # offline side, so losing the last commits on power loss is acceptable.
            connection.execute("PRAGMA synchronous=NORMAL")
        self._local.connection = connection
        self._local.pid = os.getpid()
        with self._lock:
            self._connections.append(connection)
        return connection

    @contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; IMMEDIATE takes the write lock up front (no upgrade deadlock)."""
        connection = self._connection()
        with self._unavailable_on_error():
            connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.execute("COMMIT")

    @contextmanager
    def _unavailable_on_error(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as error:
            raise OnlineStoreUnavailable(
                f"local online store {self._path} is unavailable: {error}"
            ) from error


def _encode_requests(requests: Sequence[Request]) -> list[_EncodedRequest]:
    return [(check_view(view), encode_entity_key(entity)) for view, entity in requests]
