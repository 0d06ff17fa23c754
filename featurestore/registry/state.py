"""The applied registry, kept in the offline DuckDB file.

Every apply that changes something appends one row to `featurestore_registry`:
version number, the registry text, its SHA-256, the validated definitions as JSON (so
a later plan does not depend on re-reading old text) and the UTC time. The latest row
is the applied state.

DuckDB lets one process at a time open a file for writing and holds that lock until
the connection closes. Connections here are short-lived; when another process holds
the lock we retry until `lock_timeout` has passed, then fail with a clear error. The
read, compare and insert of an apply run in one transaction, so two processes applying
at once end with versions that follow each other and never a half-written state.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from featurestore.errors import FeatureStoreError, StoreLockedError
from featurestore.registry.models import Registry
from featurestore.registry.plan import Plan, compute_plan

STATE_TABLE = "featurestore_registry"

_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    version INTEGER PRIMARY KEY,
    registry_hash VARCHAR NOT NULL,
    registry_text VARCHAR NOT NULL,
    definition VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
)
"""

_SELECT_LATEST = f"""
SELECT version, registry_hash, registry_text, definition, applied_at
FROM {STATE_TABLE} ORDER BY version DESC LIMIT 1
"""

_Result = TypeVar("_Result")


def registry_hash(text: str) -> str:
    """SHA-256 (hex) of registry text, the identity of an applied version."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AppliedRegistry:
    """One applied version of the registry.

    Attributes:
        version: 1 for the first apply, then one more for each apply that changed
            something.
        registry_hash: SHA-256 of `registry_text`.
        registry_text: the registry file as it was applied.
        definition: the validated definitions as JSON.
        applied_at: when it was applied (timezone-aware, UTC).
    """

    version: int
    registry_hash: str
    registry_text: str
    definition: str
    applied_at: datetime

    def registry(self) -> Registry:
        """The applied definitions as a Registry."""
        return Registry.model_validate_json(self.definition)


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did.

    Attributes:
        plan: the changes, computed inside the apply's transaction.
        version: the version applied now (the new one, or the unchanged current one).
        applied: True when a new version was recorded; False for a no-op.
    """

    plan: Plan
    version: int
    applied: bool

    def render(self) -> str:
        """A readable account of the apply."""
        if not self.applied:
            return f"Nothing to change: version {self.version} is applied and current."
        if self.plan.is_empty and self.plan.applied_version is None:
            return f"Applied version {self.version}: the registry defines nothing yet."
        if self.plan.is_empty:
            return (
                f"Applied version {self.version}: no definition changed "
                "(the file's text did; it is recorded)."
            )
        return f"{self.plan.render()}\nApplied version {self.version}."

    def summary(self) -> str:
        """One line: the version and how many definitions changed."""
        if not self.applied:
            return f"Nothing to change: version {self.version} is applied and current."
        counts = (len(self.plan.added), len(self.plan.changed), len(self.plan.removed))
        return "Applied version {}: {} added, {} changed, {} removed.".format(self.version, *counts)


def plan_against(applied: AppliedRegistry | None, registry: Registry, text: str) -> Plan:
    """The plan for `registry` (read from `text`) relative to an applied version."""
    if applied is None:
        return compute_plan(None, registry, None, text_changed=True)
    return compute_plan(
        applied.registry(),
        registry,
        applied.version,
        text_changed=applied.registry_hash != registry_hash(text),
    )


class AppliedState:
    """Reads and records applied registry versions in a DuckDB file."""

    def __init__(self, database: Path, lock_timeout: float = 30.0,
                 search_dir: Path | None = None) -> None:
        """Point at the offline DuckDB file; nothing is opened yet.

        Args:
            database: the offline DuckDB file (created by the first apply).
            lock_timeout: seconds to keep retrying while another process holds the file.
            search_dir: where relative file names in SQL (a `query:` source reading
                `data/x.parquet`) are looked up: the registry's folder, so that they mean
                the same whatever the working directory.
        """
        self.database = database
        self.lock_timeout = lock_timeout
        self.search_dir = search_dir
        self._shared = threading.local()  # the connection of `reading()`, per thread

    def latest(self, read_only: bool = False) -> AppliedRegistry | None:
        """The applied version, or None when nothing has been applied.

        Args:
            read_only: open the file read-only (a server polling for new versions):
                it then never holds the write lock a materialization needs.
        """
        if not self.database.exists():
            return None
        return self.run(self._read_latest, read_only=read_only)

    def apply(self, registry: Registry, text: str) -> ApplyResult:
        """Record `registry` (read from `text`) as the new applied version, if it differs.

        Raises:
            StoreLockedError: the file stayed locked by another process.
            FeatureStoreError: the file cannot be opened or written.
        """
        self._create_database()
        return self.run(lambda connection: self._apply(connection, registry, text))

    def create_if_missing(self) -> None:
        """Create the DuckDB file if it is missing (atomically, as `apply` does)."""
        self._create_database()

    def _create_database(self) -> None:
        """Create the DuckDB file if it is missing, atomically.

        A process that opens a file another process is still creating finds no valid
        header and fails. So the file is created under a temporary name and hard-linked
        into place: `link` never replaces, so exactly one creator wins and everyone else
        only ever opens a complete file.
        """
        if self.database.exists():
            return
        self.database.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.database.with_name(f".{self.database.name}.{os.getpid()}.new")
        try:
            duckdb.connect(str(temporary)).close()
            os.link(temporary, self.database)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)

    @staticmethod
    def _read_latest(connection: duckdb.DuckDBPyConnection) -> AppliedRegistry | None:
        if not table_exists(connection, STATE_TABLE):
            return None
        row = connection.execute(_SELECT_LATEST).fetchone()
        if row is None:
            return None
        version, digest, text, definition, applied_at = row
        return AppliedRegistry(version, digest, text, definition, applied_at.replace(tzinfo=UTC))

    def _apply(
        self, connection: duckdb.DuckDBPyConnection, registry: Registry, text: str
    ) -> ApplyResult:
        connection.begin()
        try:
            connection.execute(_CREATE_TABLE)
            applied = self._read_latest(connection)
            plan = plan_against(applied, registry, text)
            if applied is not None and plan.is_empty and not plan.text_changed:
                connection.rollback()
                return ApplyResult(plan, applied.version, applied=False)
            version = 1 if applied is None else applied.version + 1
            connection.execute(
                f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?, ?, ?)",
                [
                    version,
                    registry_hash(text),
                    text,
                    registry.model_dump_json(),
                    datetime.now(UTC).replace(tzinfo=None),
                ],
            )
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return ApplyResult(plan, version, applied=True)

    def run(self, work: Callable[[duckdb.DuckDBPyConnection], _Result],
            read_only: bool = False) -> _Result:
        """Run `work` on a fresh connection, retrying while the file is locked or a
        concurrent transaction in this process conflicts.

        A missing file is created first, atomically: DuckDB would create it on connect,
        and another process opening it meanwhile would find it half written. Inside
        `reading()`, read-only work runs on that block's connection.
        """
        shared = getattr(self._shared, "connection", None)
        if read_only and shared is not None:
            return work(shared)
        if not read_only:
            self._create_database()

        def attempt() -> _Result:
            with self._connection(read_only) as connection:
                return work(connection)

        return self._retrying(attempt)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Share one read-only connection among the `run(work, read_only=True)` calls
        this thread makes inside the block.

        Opening the file costs tens of milliseconds; a page that reads five tables opens
        it once, not five times. Nothing is shared when the file does not exist yet
        (readers check for it and read nothing), and nested blocks reuse the outer one.
        """
        if getattr(self._shared, "connection", None) is not None or not self.database.exists():
            yield
            return
        connection = self._retrying(lambda: self._open(read_only=True))
        self._shared.connection = connection
        try:
            yield
        finally:
            self._shared.connection = None
            connection.close()

    def _retrying(self, attempt: Callable[[], _Result]) -> _Result:
        """`attempt()`, tried again with growing pauses while the file is locked or a
        concurrent transaction in this process conflicts, for up to `lock_timeout`."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        while True:
            try:
                return attempt()
            except (duckdb.IOException, duckdb.TransactionException,
                    duckdb.ConnectionException) as error:
                self._check_retryable(error, deadline)
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 2, 0.5)

    def _check_retryable(self, error: Exception, deadline: float) -> None:
        """Raise unless `error` is a lock that may still clear before `deadline`."""
        # A connection of another configuration (read-only beside read-write) open in
        # this process refuses a new one until it closes: a lock too.
        retryable = _is_lock(error) or isinstance(
            error, duckdb.TransactionException | duckdb.ConnectionException)
        if not retryable:
            raise FeatureStoreError(
                f"cannot use the offline store {self.database}: {_first_line(error)}"
            ) from None
        if time.monotonic() >= deadline:
            raise StoreLockedError(
                f"the offline store {self.database} is locked by another process "
                f"(waited {self.lock_timeout:g}s): {_first_line(error)}"
            ) from None

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect(str(self.database), read_only=read_only)
        if self.search_dir is not None:
            connection.execute("SET file_search_path = ?", [str(self.search_dir)])
        return connection

    @contextmanager
    def _connection(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = self._open(read_only)
        try:
            yield connection
        finally:
            connection.close()


def table_exists(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the offline file holds table `name` (tables are created by the first
    write that needs them, so readers ask first)."""
    # duckdb_tables() rather than information_schema: a tenth of the time, and readers
    # ask before every read.
    found = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]
    ).fetchone()
    return found is not None and found[0] > 0


def _is_lock(error: Exception) -> bool:
    return "lock" in str(error).lower()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
