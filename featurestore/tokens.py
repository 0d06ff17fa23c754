"""Bearer tokens for the HTTP server: created, listed and revoked here, checked by
`featurestore.serving.guard`.

A token is ``fst_`` followed by 43 random URL-safe characters (256 bits). It is shown
once, when it is created; the offline DuckDB file keeps only its SHA-256 (hex), with a
name, scopes, a random id and the creation and revocation times, in the table
`featurestore_tokens`. A stolen copy of the file therefore gives no usable token.

When a token was last used is not in the table: a server would have to open the file
for writing, and a DuckDB writer locks out every other process (materializations, other
servers). Each server process instead writes the time of use to a small file per token,
``<offline folder>/tokens-used/<name>.<id>``, at most every few seconds (atomically:
written aside, then renamed). The id keeps a name that was revoked and created again
from inheriting the old token's time.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from featurestore.errors import InputError
from featurestore.registry.state import AppliedState, table_exists
from featurestore.registry.suggestions import did_you_mean

SCOPES = ("read", "push", "metrics")
"""What a token may do: `read` (lookups, /registry), `push` (POST /push), `metrics`
(GET /metrics, for a Prometheus scraper that should read nothing else)."""

TOKEN_PREFIX = "fst_"
TOKENS_TABLE = "featurestore_tokens"
USED_FOLDER = "tokens-used"
"""Folder, beside the offline file, of the per-token files holding the time of last use."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_TOKEN_BYTES = 32

_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TOKENS_TABLE} (
    token_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    scopes VARCHAR[] NOT NULL,
    token_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
)
"""
_SELECT = (f"SELECT token_id, name, scopes, token_hash, created_at, revoked_at "
           f"FROM {TOKENS_TABLE}")


@dataclass(frozen=True)
class Token:
    """One token as stored (never the token itself).

    Attributes:
        token_id: a random id, not secret: names the token's last-use file.
        name: what people call it (unique among active tokens).
        scopes: what it may do, in the order of `SCOPES`.
        token_hash: SHA-256 (hex) of the token.
        created_at: when it was created (UTC).
        revoked_at: when it was revoked (UTC), or None while it is active.
    """

    token_id: str
    name: str
    scopes: tuple[str, ...]
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the token is accepted (not revoked)."""
        return self.revoked_at is None


@dataclass(frozen=True)
class TokenInfo:
    """What `list_tokens` tells about a token: no token, no hash.

    Attributes:
        name: the token's name.
        scopes: what it may do.
        created_at: when it was created (UTC).
        last_used: when a server last accepted it (UTC; None: never, as far as the
            servers recorded), to within a few seconds.
        revoked_at: when it was revoked (UTC), or None while it is active.
    """

    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the token is accepted (not revoked)."""
        return self.revoked_at is None


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a token, the only form in which it is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(database: AppliedState, name: str, scopes: Iterable[str]) -> str:
    """Create a token and return it; only its hash is stored.

    Args:
        database: the offline DuckDB file (created if missing).
        name: letters, digits and underscores, not starting with a digit; no active
            token may have it (a revoked token's name may be used again).
        scopes: one or more of `SCOPES`.

    Raises:
        InputError: an invalid name or scope, no scope, or an active token of that name.
        StoreLockedError: the offline file stayed locked by another process.
    """
    checked = check_scopes(scopes)
    if _NAME.fullmatch(name) is None:
        raise InputError(f"'{name}' is not a valid token name: use letters, digits and "
                         "underscores, not starting with a digit (at most 64)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    row = [secrets.token_hex(8), name, list(checked), hash_token(token),
           datetime.now(UTC).replace(tzinfo=None)]

    def insert(connection: duckdb.DuckDBPyConnection) -> None:
        connection.begin()
        try:
            connection.execute(_CREATE_TABLE)
            if any(stored.name == name for stored in _active(connection)):
                raise InputError(f"an active token named '{name}' exists: revoke it first "
                                 f"(featurestore token revoke {name}) or choose another name")
            connection.execute(f"INSERT INTO {TOKENS_TABLE} VALUES (?, ?, ?, ?, ?, NULL)", row)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise

    database.create_if_missing()
    database.run(insert)
    return token


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes in the order of `SCOPES`, duplicates dropped (one scope may be given
    as a plain string).

    Raises:
        InputError: no scope, or an unknown one (with a suggestion).
    """
    given = [scopes] if isinstance(scopes, str) else list(scopes)
    if not given:
        raise InputError(f"a token needs at least one scope: {', '.join(SCOPES)}")
    for scope in given:
        if scope not in SCOPES:
            raise InputError(f"unknown scope '{scope}'{did_you_mean(scope, SCOPES)}; "
                             f"scopes: {', '.join(SCOPES)}")
    return tuple(scope for scope in SCOPES if scope in given)


def revoke_token(database: AppliedState, name: str) -> None:
    """Revoke the active token of that name; servers refuse it within a few seconds.

    Raises:
        InputError: no active token has that name (with a suggestion).
        StoreLockedError: the offline file stayed locked by another process.
    """

    def revoke(connection: duckdb.DuckDBPyConnection) -> None:
        connection.begin()
        try:
            stored = _tokens(connection)
            if not any(token.name == name and token.active for token in stored):
                raise InputError(_not_active(name, stored))
            connection.execute(f"UPDATE {TOKENS_TABLE} SET revoked_at = ? "
                               "WHERE name = ? AND revoked_at IS NULL",
                               [datetime.now(UTC).replace(tzinfo=None), name])
            connection.commit()
        except BaseException:
            connection.rollback()
            raise

    if not database.database.exists():
        raise InputError(f"no token named '{name}': none was ever created "
                         "(featurestore token create NAME --scope read)")
    database.run(revoke)


def list_tokens(database: AppliedState) -> list[TokenInfo]:
    """Every token, active and revoked, oldest first, with its last use.

    Raises:
        StoreLockedError: the offline file stayed locked by another process.
    """
    if not database.database.exists():
        return []
    stored = database.run(_tokens, read_only=True)
    folder = used_folder(database.database)
    return [TokenInfo(token.name, token.scopes, token.created_at, read_last_use(folder, token),
                      token.revoked_at) for token in stored]


def active_tokens(database: AppliedState) -> list[Token]:
    """The tokens a server accepts now, read with a read-only connection.

    Raises:
        StoreLockedError: the offline file stayed locked by another process.
        FeatureStoreError: the file cannot be read.
    """
    if not database.database.exists():
        return []
    return database.run(_active, read_only=True)


def used_folder(offline_path: Path) -> Path:
    """The folder of last-use files for the tokens of one offline file."""
    return offline_path.parent / USED_FOLDER


def read_last_use(folder: Path, token: Token) -> datetime | None:
    """When a server last recorded a use of `token` (None: never, or unreadable)."""
    try:
        return datetime.fromisoformat(_use_file(folder, token).read_text().strip())
    except (OSError, ValueError):
        return None


def write_last_use(folder: Path, token: Token, when: datetime) -> None:
    """Record a use of `token` at `when` unless a newer one is recorded (several server
    processes write the same file): written aside, then renamed into place.

    Raises:
        OSError: the folder cannot be written.
    """
    recorded = read_last_use(folder, token)
    if recorded is not None and recorded >= when:
        return
    folder.mkdir(parents=True, exist_ok=True)
    target = _use_file(folder, token)
    aside = folder / f".{target.name}.{os.getpid()}.new"
    aside.write_text(when.isoformat() + "\n")
    os.replace(aside, target)


def _use_file(folder: Path, token: Token) -> Path:
    return folder / f"{token.name}.{token.token_id}"


def _not_active(name: str, stored: Sequence[Token]) -> str:
    if any(token.name == name for token in stored):
        return f"the token '{name}' is already revoked"
    active = [token.name for token in stored if token.active]
    return f"no active token named '{name}'{did_you_mean(name, active)}"


def _tokens(connection: duckdb.DuckDBPyConnection) -> list[Token]:
    if not table_exists(connection, TOKENS_TABLE):
        return []
    rows = connection.execute(f"{_SELECT} ORDER BY created_at, name").fetchall()
    return [Token(token_id, name, tuple(scopes), digest, created.replace(tzinfo=UTC),
                  revoked.replace(tzinfo=UTC) if revoked is not None else None)
            for token_id, name, scopes, digest, created, revoked in rows]


def _active(connection: duckdb.DuckDBPyConnection) -> list[Token]:
    return [token for token in _tokens(connection) if token.active]
