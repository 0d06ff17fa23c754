"""What a running server serves: one consistent (registry, kernels, states) triple.

A deployment lives on while people apply new registry versions and materialize. The
server follows it without a restart:

- The online store publishes, with every version of states, the registry version that
  built them (`featurestore.online.published`). The server compiles the kernels of
  that registry (from the disk cache that `apply` and `materialize` filled) and serves
  the pair, so states are never read by kernels of other definitions.
- An applied version whose feature views have the same state keys as the published
  states (an edit to request views or services only) needs no materialization: it is
  served at once, with those states.
- An applied version that changes feature views waits for its materialization; until
  then the last consistent pair keeps answering and `/health` says what is pending.

A thread checks both every `poll_seconds` (1 s by default): one online-store read, and
a read-only look at the offline file's applied version (skipped while a
materialization holds the file). A request that meets states of other definitions
before the thread noticed (a publish in between) switches at once and is answered by
the new pair. Switching builds the new pair aside and swaps one reference, so requests
in flight finish on the pair they started with.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from featurestore.compilation import read_schemas
from featurestore.context import StoreContext
from featurestore.errors import (
    FeatureStoreError,
    NotMaterializedError,
    OnlineStoreUnavailable,
    RegistryMismatchError,
    StoreLockedError,
)
from featurestore.offline.push_audit import PushOrigin
from featurestore.online.published import REGISTRY, PublishedRegistry, published_registry
from featurestore.registry import Registry
from featurestore.registry.state import AppliedRegistry, AppliedState
from featurestore.serving.lookup import OnlineLookup
from featurestore.serving.lookup_answer import LookupAnswer
from featurestore.serving.push import PushResult, push
from featurestore.serving.served_log import ServedLog
from featurestore.view_states import state_keys
from transforms import view_fingerprints
from transforms.spec import ColumnType

POLL_SECONDS = 1.0
"""How often a server looks for a newly applied or published version."""

_POLL_LOCK_TIMEOUT_S = 0.1
_log = logging.getLogger("featurestore.serving")
_Result = TypeVar("_Result")
Schemas = Mapping[str, Mapping[str, ColumnType]]


@dataclass(frozen=True)
class ServedVersion:
    """The pair a server answers with, and what it knows of the deployment.

    Attributes:
        context: the served registry's context (kernels compiled, shared store clients).
        engine: the lookup engine of that registry.
        registry_version: the applied version number of the served registry (None when
            nothing was ever applied: the registry file is served).
        applied_version: the newest applied version known (None: none).
        pending: why the applied version is not served yet (None: it is).
        identity: the served registry text and source schemas: equal identities need
            no new kernels.
    """

    context: StoreContext
    engine: OnlineLookup
    registry_version: int | None
    applied_version: int | None
    pending: str | None
    identity: tuple[str, str]


@dataclass(frozen=True)
class _Target:
    registry: Registry
    text: str
    schemas: Schemas | None
    version: int | None
    pending: str | None


class Deployment:
    """Keeps a server on the newest consistent version (see the module docstring).

    Args:
        base: the context of the store the server was started for (its registry file
            is served only while nothing is applied).
        poll_seconds: how often `start`'s thread looks for new versions.

    Attributes:
        served_log: where `answer` offers each answered lookup (None: not logged).
    """

    def __init__(self, base: StoreContext, poll_seconds: float = POLL_SECONDS) -> None:
        self._base = base
        self._poll_seconds = poll_seconds
        self._offline = AppliedState(base.offline_path, _POLL_LOCK_TIMEOUT_S,
                                     search_dir=base.base_dir)
        self._lock = threading.Lock()
        self._applied: AppliedRegistry | None = None
        self._applied_keys: tuple[int, Schemas, dict[str, str]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: ServedVersion | None = None
        self.served_log: ServedLog | None = None
        self.refresh()

    @property
    def current(self) -> ServedVersion:
        """The pair serving now."""
        assert self._current is not None  # set by __init__
        return self._current

    def start(self) -> None:
        """Start the thread that follows new versions."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="featurestore-versions",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop following new versions."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def lookup(self, **arguments: Any) -> dict[str, list]:
        """`get_online_features` with the served registry (switching first if the states
        moved to other definitions)."""
        return self._with_current(
            lambda served: served.engine.lookup(served.context.online_store(), **arguments))

    def answer(self, **arguments: Any) -> LookupAnswer:
        """`OnlineLookup.answer` (values, warnings, metadata) with the served registry."""
        return self._with_current(lambda served: self._answer(served, arguments))

    def _answer(self, served: ServedVersion, arguments: dict[str, Any]) -> LookupAnswer:
        answer = served.engine.answer(served.context.online_store(),
                                      fits=served.context.fits(), **arguments)
        if self.served_log is not None:
            self.served_log.offer(arguments, answer, served.registry_version)
        return answer

    def push(self, source: str, rows: object, origin: PushOrigin | None = None) -> PushResult:
        """`push` with the served registry (`origin` for its audit record)."""
        return self._with_current(lambda served: push(served.context, source, rows, origin))

    def refresh(self) -> ServedVersion:
        """Look for new versions now and switch to the newest consistent pair.

        An unreachable online store or a locked offline file leave what is served as
        it is (the next look retries).
        """
        with self._lock:
            try:
                published = self._published()
            except OnlineStoreUnavailable:
                if self._current is not None:
                    return self._current
                published = None
            self._read_applied()
            target = self._target(published)
            self._current = self._serve(target)
            return self._current

    def _with_current(self, work: Callable[[ServedVersion], _Result]) -> _Result:
        served = self.current
        try:
            return work(served)
        except (RegistryMismatchError, NotMaterializedError):
            if self.refresh().engine is served.engine:
                raise
            return work(self.current)

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            try:
                self.refresh()
            except Exception:  # keep following; the next look may succeed
                _log.exception("looking for a new registry version failed")

    def _published(self) -> PublishedRegistry | None:
        result = self._base.online_store().read([], [REGISTRY])
        return published_registry(result.metadata) if result.version is not None else None

    def _read_applied(self) -> None:
        try:
            self._applied = self._offline.latest(read_only=True)
        except StoreLockedError:
            pass  # a materialization or apply holds the file: keep the last known
        except FeatureStoreError as error:
            _log.warning("cannot read the applied registry: %s", error)

    def _target(self, published: PublishedRegistry | None) -> _Target:
        applied = self._applied
        if published is not None and (applied is None or published.version >= applied.version
                                      or published.registry_hash == applied.registry_hash):
            return _Target(published.registry(), published.text, published.column_types(),
                           published.version, None)
        if applied is None:
            return _Target(self._base.registry, self._base.registry_text, None, None, None)
        try:
            schemas, keys = self._applied_state_keys(applied)
        except (FeatureStoreError, StoreLockedError) as error:
            if published is None:
                raise
            return _Target(published.registry(), published.text, published.column_types(),
                           published.version, f"applied version {applied.version} cannot be "
                           f"served: {error}; serving version {published.version}")
        if published is None:
            return _Target(applied.registry(), applied.registry_text, schemas, applied.version,
                           f"applied version {applied.version} is not materialized")
        stale = sorted(view for view, key in keys.items()
                       if published.state_keys.get(view) != key)
        if not stale:
            return _Target(applied.registry(), applied.registry_text, schemas, applied.version,
                           None)
        return _Target(published.registry(), published.text, published.column_types(),
                       published.version,
                       f"applied version {applied.version} is not materialized (feature views "
                       f"{', '.join(stale)}); serving version {published.version}")

    def _applied_state_keys(self, applied: AppliedRegistry) -> tuple[Schemas, dict[str, str]]:
        """Source schemas and state keys of an applied version (computed once per version)."""
        if self._applied_keys is None or self._applied_keys[0] != applied.version:
            registry = applied.registry()
            schemas = self._offline.run(lambda con: read_schemas(
                con, registry, self._base.base_dir, self._base.offline_path), read_only=True)
            keys = state_keys(registry, view_fingerprints(registry.to_graph_spec(schemas)))
            self._applied_keys = (applied.version, schemas, keys)
        return self._applied_keys[1], self._applied_keys[2]

    def _serve(self, target: _Target) -> ServedVersion:
        schemas = "" if target.schemas is None else repr(sorted(
            (source, sorted(columns.items())) for source, columns in target.schemas.items()))
        identity = (target.text, schemas)
        applied = self._applied.version if self._applied is not None else None
        current = self._current
        if current is not None and current.identity == identity:
            return dataclasses.replace(current, registry_version=target.version,
                                       applied_version=applied, pending=target.pending)
        if target.schemas is None:
            context = self._base
        else:
            context = self._base.for_definitions(target.registry, target.text, target.schemas)
        kernels = context.kernels()
        kernels.warm()
        if current is not None:
            _log.info("serving registry version %s", target.version)
        return ServedVersion(context, OnlineLookup(context.registry, kernels), target.version,
                             applied, target.pending, identity)
