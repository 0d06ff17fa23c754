"""Fitted artifacts and pins, stored in the offline DuckDB file.

A fitted artifact freezes one service's transform statistics. Its id is the first 16
hex digits of the sha256 of its definitions and statistics, so the same definitions
fitted on the same data give the same id, and anything else a new one. The pin says
which artifact serves a service: the first fit of a service pins itself; later fits are
pinned only when asked (`featurestore fit --pin`, `featurestore pin-fit`), so a refit
never changes what is served until someone says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import orjson

from featurestore.errors import InputError
from featurestore.registry.state import AppliedState, table_exists

FITS_TABLE = "fitted_transforms"
PINS_TABLE = "fit_pins"
_CREATE = [
    f"CREATE TABLE IF NOT EXISTS {FITS_TABLE} (id VARCHAR PRIMARY KEY, service VARCHAR, "
    "created_at TIMESTAMP, rows BIGINT, registry_version INTEGER, definitions_hash VARCHAR, "
    "definitions VARCHAR, statistics VARCHAR)",
    f"CREATE TABLE IF NOT EXISTS {PINS_TABLE} (service VARCHAR PRIMARY KEY, fit_id VARCHAR, "
    "pinned_at TIMESTAMP)",
    # Files written before fits kept profiles (for drift) gain the column; old rows hold NULL.
    f"ALTER TABLE {FITS_TABLE} ADD COLUMN IF NOT EXISTS profiles VARCHAR",
]
_COLUMNS = ("id, service, created_at, rows, registry_version, definitions_hash, definitions, "
            "statistics")


class NotFittedError(InputError):
    """A service has no fit (or no pinned fit) to serve."""


class UnknownFitError(InputError):
    """A request names a fit the service does not have."""


@dataclass(frozen=True)
class FitArtifact:
    """One fitted artifact.

    Attributes:
        id: hash of definitions and statistics (16 hex digits).
        service: the service fitted.
        created_at: when (UTC).
        rows: training-set rows it was fitted on.
        registry_version: the applied registry version it was fitted under.
        definitions_hash: the hash of the transform and feature definitions it is for.
        definitions: those definitions.
        statistics: transform name → its fitted statistics.
        profiles: `view:feature` → a summary of each input feature's values in the
            training set (`featurestore.drift.profiles.summary`), the baseline of
            `featurestore drift --baseline fit:ID`; empty for fits stored before fits
            kept them. Not part of the id, which stays a hash of what serving applies.
    """

    id: str
    service: str
    created_at: datetime
    rows: int
    registry_version: int
    definitions_hash: str
    definitions: dict[str, object]
    statistics: dict[str, dict[str, object]]
    profiles: dict[str, dict[str, object]] = field(default_factory=dict)


def artifact_id(definitions: Mapping[str, object], statistics: Mapping[str, object]) -> str:
    """The id of an artifact: its content's hash."""
    content = orjson.dumps({"definitions": definitions, "statistics": statistics},
                           option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(content).hexdigest()[:16]


def save_fit(database: AppliedState, artifact: FitArtifact, pin: bool | None) -> tuple[bool, bool]:
    """Store an artifact (kept as it is if one with its id exists) and pin it when `pin`
    is True, or when None and the service has no pin yet.

    Returns:
        (whether the artifact is new, whether it is now pinned).
    """

    def work(con: duckdb.DuckDBPyConnection) -> tuple[bool, bool]:
        con.begin()
        try:
            _create_tables(con)
            exists = con.execute(f"SELECT count(*) FROM {FITS_TABLE} WHERE id = ?",
                                 [artifact.id]).fetchone()[0] > 0  # type: ignore[index]
            profiles = orjson.dumps(artifact.profiles).decode()
            if not exists:
                con.execute(f"INSERT INTO {FITS_TABLE} ({_COLUMNS}, profiles) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    artifact.id, artifact.service, artifact.created_at.replace(tzinfo=None),
                    artifact.rows, artifact.registry_version, artifact.definitions_hash,
                    orjson.dumps(artifact.definitions).decode(),
                    orjson.dumps(artifact.statistics).decode(), profiles])
            else:
                # The same fit stored before fits kept profiles gets them now.
                con.execute(f"UPDATE {FITS_TABLE} SET profiles = ? WHERE id = ? AND "
                            "profiles IS NULL", [profiles, artifact.id])
            pinned = _pin_of(con, artifact.service)
            if pin or (pin is None and pinned is None):
                _pin(con, artifact.service, artifact.id)
                pinned = artifact.id
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return not exists, pinned == artifact.id

    return database.run(work)


def pin_fit(database: AppliedState, service: str, fit: str) -> FitArtifact:
    """Make a fit (an id, a unique prefix of one, or "latest") the one serving `service`.

    Raises:
        NotFittedError, UnknownFitError: no such fit of that service.
    """
    artifact = find_fit(database, service, fit)

    def work(con: duckdb.DuckDBPyConnection) -> None:
        _create_tables(con)
        _pin(con, service, artifact.id)

    database.run(work)
    return artifact


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in _CREATE:
        con.execute(statement)


def _pin(con: duckdb.DuckDBPyConnection, service: str, fit_id: str) -> None:
    con.execute(f"INSERT OR REPLACE INTO {PINS_TABLE} VALUES (?, ?, ?)",
                [service, fit_id, datetime.now(UTC).replace(tzinfo=None)])


def _pin_of(con: duckdb.DuckDBPyConnection, service: str) -> str | None:
    if not table_exists(con, PINS_TABLE):
        return None
    row = con.execute(f"SELECT fit_id FROM {PINS_TABLE} WHERE service = ?", [service]).fetchone()
    return None if row is None else str(row[0])


def pins(database: AppliedState, read_only: bool = True) -> dict[str, str]:
    """Service → pinned fit id."""
    if not database.database.exists():
        return {}

    def work(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        if not table_exists(con, PINS_TABLE):
            return {}
        return dict(con.execute(f"SELECT service, fit_id FROM {PINS_TABLE}").fetchall())

    return database.run(work, read_only=read_only)


def list_fits(database: AppliedState, service: str | None = None) -> list[FitArtifact]:
    """Every fit (of one service when given), newest first."""
    where, parameters = ("WHERE service = ?", [service]) if service is not None else ("", [])
    return _select(database, f"{where} ORDER BY created_at DESC, id", parameters)


def load_fit(database: AppliedState, fit_id: str) -> FitArtifact | None:
    """The artifact with exactly this id, if stored."""
    found = _select(database, "WHERE id = ?", [fit_id])
    return found[0] if found else None


def find_fit(database: AppliedState, service: str, fit: str | None) -> FitArtifact:
    """The fit a request names: None for the pinned one, "latest" for the newest, else
    an id or a unique prefix of one.

    Raises:
        NotFittedError: nothing fitted (or pinned) for the service; the message names
            the command to run.
        UnknownFitError: no (or no single) such fit.
    """
    fits = list_fits(database, service)
    command = f"featurestore fit --service {service} --spine FILE"
    if not fits:
        raise NotFittedError(f"service '{service}' has no fitted transforms: run `{command}`")
    if fit is None:
        pinned = pins(database).get(service)
        if pinned is None:
            raise NotFittedError(f"service '{service}' has no pinned fit: run "
                                 f"`featurestore pin-fit {service} latest`")
        fit = pinned
    if fit == "latest":
        return fits[0]
    matches = [artifact for artifact in fits if artifact.id.startswith(fit)]
    if len(matches) != 1:
        known = ", ".join(artifact.id for artifact in fits[:5])
        problem = "no" if not matches else "more than one"
        raise UnknownFitError(f"{problem} fit of service '{service}' has id '{fit}' (its fits, "
                              f"newest first: {known}); `featurestore list fits` lists them")
    return matches[0]


def _select(database: AppliedState, clause: str, parameters: list[object]) -> list[FitArtifact]:
    if not database.database.exists():
        return []

    def work(con: duckdb.DuckDBPyConnection) -> list[tuple]:
        if not table_exists(con, FITS_TABLE):
            return []
        # Read-only: a file from before profiles lacks the column until the next fit.
        has_profiles = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = "
            "'profiles'", [FITS_TABLE]).fetchone()[0] > 0  # type: ignore[index]
        profiles = "profiles" if has_profiles else "NULL"
        return con.execute(f"SELECT {_COLUMNS}, {profiles} FROM {FITS_TABLE} {clause}",
                           parameters).fetchall()

    return [FitArtifact(row[0], row[1], row[2].replace(tzinfo=UTC), row[3], row[4], row[5],
                        orjson.loads(row[6]), orjson.loads(row[7]),
                        orjson.loads(row[8]) if row[8] is not None else {})
            for row in database.run(work, read_only=True)]
