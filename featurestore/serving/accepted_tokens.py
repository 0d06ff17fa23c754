"""The tokens a server process accepts, kept fresh, and when each was last used.

The active tokens are read from the offline DuckDB file (read-only: a server never
takes the write lock, which would lock out materializations and other servers) when the
server starts, then every second by a thread, so a revoked token is refused within about
a second without a restart. While another process holds the file's write lock (a
materialization or apply running), the read is skipped and the last set read stays in
force: a token revoked then is refused once the lock is released.

Uses are noted in memory on each accepted request and written to the token's last-use
file (`featurestore.tokens.write_last_use`) by the same thread, at most every
`LAST_USE_WRITE_SECONDS` per token and once more when the server stops.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from featurestore.errors import FeatureStoreError, StoreLockedError
from featurestore.registry.state import AppliedState
from featurestore.tokens import Token, active_tokens, hash_token, used_folder, write_last_use

REFRESH_SECONDS = 1.0
"""How often a server re-reads the active tokens."""

LAST_USE_WRITE_SECONDS = 5.0
"""Least time between two writes of one token's last-use file by one process."""

_STARTUP_LOCK_TIMEOUT_S = 5.0
_POLL_LOCK_TIMEOUT_S = 0.1
_log = logging.getLogger("featurestore.serving")


class AcceptedTokens:
    """The active tokens of one offline file, as one server process sees them.

    Args:
        offline_path: the offline DuckDB file holding the tokens.
        refresh_seconds: how often `start`'s thread re-reads them.
    """

    def __init__(self, offline_path: Path, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._polled = AppliedState(offline_path, _POLL_LOCK_TIMEOUT_S)
        self._folder = used_folder(offline_path)
        self._refresh_seconds = refresh_seconds
        self._tokens: tuple[Token, ...] = ()
        self._uses: dict[str, tuple[Token, float]] = {}  # token id → (token, epoch seconds)
        self._written: dict[str, tuple[float, float]] = {}  # token id → (monotonic, use)
        self._uses_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_failed = False
        self.refresh(AppliedState(offline_path, _STARTUP_LOCK_TIMEOUT_S))

    @property
    def count(self) -> int:
        """How many tokens are accepted now."""
        return len(self._tokens)

    def find(self, presented: str) -> Token | None:
        """The active token equal to `presented`, or None.

        The presented token is hashed and compared with every active hash in constant
        time, without stopping at a match: how long this takes tells nothing about how
        much of a guess was right.
        """
        digest = hash_token(presented)
        found = None
        for token in self._tokens:
            if hmac.compare_digest(digest, token.token_hash):
                found = token
        return found

    def note_use(self, token: Token) -> None:
        """Remember that `token` was accepted now (written later by the thread)."""
        with self._uses_lock:
            self._uses[token.token_id] = (token, time.time())

    def refresh(self, database: AppliedState | None = None) -> None:
        """Re-read the active tokens; keep the last set when the file is locked or
        unreadable."""
        try:
            self._tokens = tuple(active_tokens(database or self._polled))
        except StoreLockedError:
            pass  # a materialization or apply holds the file: the last set stays
        except FeatureStoreError as error:
            _log.warning("cannot read the tokens: %s", error)

    def start(self) -> None:
        """Start the thread that re-reads the tokens and writes their last use."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._follow, name="featurestore-tokens",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write every use not written yet."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.write_uses(everything=True)

    def write_uses(self, everything: bool = False) -> None:
        """Write the last use of tokens used since their last write, unless written less
        than `LAST_USE_WRITE_SECONDS` ago (`everything`: regardless)."""
        now = time.monotonic()
        with self._uses_lock:
            uses = list(self._uses.items())
        for token_id, (token, used) in uses:
            written_at, written_use = self._written.get(token_id, (float("-inf"), 0.0))
            if used <= written_use or (not everything
                                       and now - written_at < LAST_USE_WRITE_SECONDS):
                continue
            self._written[token_id] = (now, used)
            try:
                write_last_use(self._folder, token, datetime.fromtimestamp(used, UTC))
            except OSError as error:
                if not self._write_failed:  # once: the folder stays unwritable, mostly
                    _log.warning("cannot record when tokens were used in %s: %s",
                                 self._folder, error)
                self._write_failed = True

    def _follow(self) -> None:
        while not self._stop.wait(self._refresh_seconds):
            try:
                self.refresh()
                self.write_uses()
            except Exception:  # keep following; the next round may succeed
                _log.exception("refreshing the accepted tokens failed")
