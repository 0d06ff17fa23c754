"""FeatureStore: the SDK facade (DESIGN §8).

The facade holds the validated registry and where things live, and delegates the
work: plan and apply to `featurestore.registry`. It does no work of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from featurestore import tokens
from featurestore.catalog import Catalog, CatalogEntry, Description, feature_types
from featurestore.context import StoreContext
from featurestore.drift.comparison import DriftReport
from featurestore.drift.detection import detect_drift
from featurestore.errors import FeatureStoreError, InputError, RegistryError
from featurestore.fits.artifacts import FitArtifact, list_fits, pin_fit, pins
from featurestore.fits.fitting import FitResult, fit_service
from featurestore.fits.service_transforms import check_transform_types
from featurestore.offline.check_history import run_check
from featurestore.offline.materialize import MaterializeResult, Progress, materialize
from featurestore.offline.push_audit import PushOrigin, PushRecord, read_push_audit
from featurestore.offline.replay import replay as replay_log
from featurestore.offline.replay_report import ReplayReport
from featurestore.offline.saved_sets import (
    ReproduceResult,
    SaveResult,
    list_training_sets,
    reproduce_training_set,
    save_training_set,
)
from featurestore.offline.snapshot import build_snapshot
from featurestore.offline.training import Output, build_training_set
from featurestore.offline.view_runs import last_runs
from featurestore.online import OnlineStore
from featurestore.registry import Registry, load_registry, resolve_registry_path
from featurestore.registry.plan import Plan
from featurestore.registry.state import AppliedRegistry, AppliedState, ApplyResult, plan_against
from featurestore.registry.suggestions import did_you_mean
from featurestore.serving.deployment import POLL_SECONDS, Deployment
from featurestore.serving.lookup import get_online_features as lookup_features
from featurestore.serving.lookup_answer import OnlineOutput
from featurestore.serving.push import PushResult
from featurestore.serving.push import push as push_rows
from featurestore.serving.served_log import read_served_log, served_log_dir
from featurestore.serving.verify import VerifyReport
from featurestore.serving.verify import verify as verify_online
from featurestore.source_checks import check_sources
from featurestore.statistics.compute import compute_statistics, view_statistics_history
from featurestore.statistics.history import ViewStatisticsRun
from featurestore.statistics.model import DatasetStatistics
from featurestore.times import to_micros
from featurestore.validation.on_demand import quarantine_groups, quarantined_rows
from featurestore.validation.on_demand import validate as validate_expectations
from featurestore.validation.records import QuarantinedRow, QuarantineGroup
from featurestore.validation.verdicts import ValidationReport
from featurestore.view_states import compiled_state_keys
from transforms import CompiledGraph

if TYPE_CHECKING:
    import pandas as pd


class FeatureStore:
    """A feature store defined by one registry.yaml.

    The registry is read and validated once, when the store is created; create a new
    FeatureStore to pick up edits to the file.

    Example:
        >>> store = FeatureStore("registry.yaml")
        >>> print(store.plan())
        >>> store.apply()
    """

    def __init__(
        self, registry: str | os.PathLike[str] = "registry.yaml", *, lock_timeout: float = 30.0
    ) -> None:
        """Load and validate the registry.

        Args:
            registry: the registry file, or a folder holding registry.yaml.
            lock_timeout: seconds to wait while another process holds the offline
                DuckDB file before failing.

        Raises:
            RegistryError: the file is missing or invalid (every problem listed).
            FeatureStoreError: FEATURESTORE_ONLINE holds an unusable value.
        """
        path = resolve_registry_path(registry)
        loaded, text = load_registry(path)
        self._context = StoreContext(loaded, text, path.resolve(), lock_timeout)

    @property
    def registry(self) -> Registry:
        """The validated definitions from the registry file."""
        return self._context.registry

    @property
    def registry_text(self) -> str:
        """The registry file's text as it was read."""
        return self._context.registry_text

    @property
    def registry_path(self) -> Path:
        """Absolute path of the registry file."""
        return self._context.registry_path

    @property
    def base_dir(self) -> Path:
        """The folder holding the registry file; relative paths in it start here."""
        return self._context.base_dir

    @property
    def offline_path(self) -> Path:
        """The offline DuckDB file: $FEATURESTORE_OFFLINE, else `store.offline`, else
        `<project>.duckdb` next to the registry file."""
        return self._context.offline_path

    @property
    def online(self) -> str:
        """The online store: "local" or a redis:// URL ($FEATURESTORE_ONLINE wins)."""
        return self._context.online

    def plan(self) -> Plan:
        """What `apply` would change, compared with the last applied version.

        The sources are checked as `apply` checks them (they exist and hold the columns
        the definitions use, of usable types) and expressions are typed against them,
        without compiling; nothing is written.

        Raises:
            RegistryError: every problem with the sources or expressions, each located
                in the registry file.
            StoreLockedError: the offline file stayed locked by another process.
        """
        self._check_sources()
        return plan_against(self.applied(), self.registry, self.registry_text)

    def apply(self, progress: Callable[[str], None] | None = None) -> ApplyResult:
        """Validate, compile and record the registry as the applied version.

        Sources are checked (they exist and have the columns the features use) and the
        graph is compiled before anything is recorded; applying an unchanged file is a
        no-op. Only views whose definitions changed compile; `progress` gets a line for
        each (`compiling user_txn (3/20)`).

        Raises:
            RegistryError: every problem with the sources or expressions, or a
                definition that cannot be compiled, each located in the file.
            StoreLockedError: the offline file stayed locked by another process.
        """
        self._check_sources()
        self.kernels().compile_missing(progress)
        check_transform_types(self.registry, self.kernels(), self.registry_text,
                              str(self.registry_path))
        return self._context.offline_database().apply(self.registry, self.registry_text)

    def _check_sources(self) -> None:
        # Every source problem at once, located; kernels() alone stops at the first.
        check_sources(self.registry, self.registry_text, self.registry_path,
                      self.offline_path, self.offline_database())

    def materialize(self, end: object = None, full: bool = False,
                    progress: Progress | None = None,
                    engine: str | None = None) -> MaterializeResult:
        """Process events before `end` (default now, UTC), update the offline tables and
        load the online store (DESIGN §4.5).

        Only events since the last run's watermark are read unless `full` is set or the
        definitions changed. The offline update is one transaction and the online load
        becomes visible atomically.

        Args:
            end: ISO-8601 text ("2024-03-31" is midnight; no offset means UTC) or a
                datetime (naive = UTC); default now.
            full: rebuild from all events instead of those since the last run.
            progress: called as progress(view, partitions_done, partitions_total,
                events_done) while views are processed.
            engine: where partitions run: "local" or "dask://host:port"; None takes
                $FEATURESTORE_ENGINE, else the registry's `store.engine`, else local.

        Raises:
            NotAppliedError: the registry has changes that are not applied.
            InputError: `end` is not a time or precedes the last run's end (without full),
                or a malformed engine setting.
            SourceError: a source cannot be read.
            OnlineStoreUnavailable: the online store cannot be reached.
            EngineError: the engine cannot be reached or gave up on a partition (the
                offline tables and the online store are left as they were).
        """
        return materialize(self._context, end=end, full=full, progress=progress,
                           engine=engine)

    def get_training_set(
        self,
        spine: object,
        features: Sequence[str] | str | None = None,
        service: str | None = None,
        timestamp: str = "event_ts",
        full_names: bool = False,
        output: Output = "pandas",
        transformed: bool = False,
        fit: str | None = None,
        engine: str | None = None,
    ) -> pd.DataFrame | pa.Table:
        """A point-in-time training set (DESIGN §4, §8): the spine plus feature columns.

        Each row's features see only events strictly before its time. Every spine
        column is kept and rows keep their order; feature columns are appended in
        request order, named by the bare feature name (`view__feature` with
        `full_names`). Request-view features read their request fields from spine
        columns of the same name.

        Args:
            spine: a pandas or polars DataFrame, an Arrow table, or a Parquet path,
                holding the entity keys, the timestamp column (naive = UTC, tz-aware, or
                ISO-8601 text) and anything else (labels, request fields).
            features: `view:feature` references or service names, in output order.
            service: a service name (instead of `features`).
            timestamp: the spine's time column.
            full_names: name feature columns `view__feature`.
            output: "pandas" (nullable dtypes where an integer can be null) or "arrow"
                (a pyarrow Table, which large results need not pass through pandas).
            transformed: with `service`, append the service's transformed columns after
                its features (one-hot: a `name__<value>` column per fitted value),
                computed with a fit's frozen statistics by the kernel online lookups use.
            fit: which fit: None (the pinned one), "latest", or an id (or unique prefix).
            engine: where partitions run: "local" or "dask://host:port" (each partition
                on a Dask worker, the same values bit for bit); None takes
                $FEATURESTORE_ENGINE, else the registry's `store.engine`, else local.

        Raises:
            InputError: bad arguments; no such fit (the message names the command that
                makes one); the spine lacks an entity key, the timestamp or a
                request field, has nulls in the timestamp, or already has a column named
                like a feature; two features share a bare name. (A row with a null entity
                key gets an unseen entity's features, with a FeatureStoreWarning.)
            SourceError: a source cannot be read or does not match the definitions.
        """
        return build_training_set(self._context, spine, features=features, service=service,
                                  timestamp=timestamp, full_names=full_names, output=output,
                                  transformed=transformed, fit=fit, engine=engine)

    def save_training_set(
        self, name: str, spine: object, features: Sequence[str] | str | None = None,
        service: str | None = None, timestamp: str = "event_ts", full_names: bool = False,
        overwrite: bool = False, transformed: bool = False, fit: str | None = None,
    ) -> SaveResult:  # fmt: skip
        """Build a training set (as `get_training_set`) and store it under `name` beside
        the offline file, with its spine and a manifest of what it was built from, so
        that `reproduce_training_set` can check it later (`offline.saved_sets`). With
        `transformed` (and `fit`, as for `get_training_set`) the manifest records the id
        of the fit applied.

        Raises:
            NotAppliedError: the registry file is not applied as it is.
            InputError: a bad or (without `overwrite`) existing name; a bad request.
            SourceError: a source cannot be read.
        """
        return save_training_set(self._context, name, spine, features=features,
                                 service=service, timestamp=timestamp,
                                 full_names=full_names, overwrite=overwrite,
                                 transformed=transformed, fit=fit)

    def reproduce_training_set(self, name: str) -> ReproduceResult:
        """Build a saved training set again from its stored spine with the current files
        and compare it byte for byte; the result names what changed when it differs.

        Raises:
            InputError: no training set has that name.
        """
        return reproduce_training_set(self._context, name)

    def fit(self, service: str, spine: object, timestamp: str = "event_ts",
            pin: bool | None = None) -> FitResult:
        """Fit a service's transforms (its `transforms:` in the registry) on the training
        set of `spine`, and store the statistics as a fitted artifact in the offline file.

        Every statistic is computed in one pass over the training set; quantiles are
        exact. The artifact's id hashes its definitions and statistics, so fitting the
        same definitions on the same data gives the same id.

        Args:
            service: a service that declares transforms.
            spine: as for `get_training_set` (entity keys, timestamp, request fields).
            timestamp: the spine's time column.
            pin: serve this fit (True), or not (False); None pins it only when the
                service has no pinned fit yet, so a refit never changes what is served
                until asked (`pin_fit`).

        Raises:
            NotAppliedError: the registry file has changes that are not applied.
            InputError: no transforms, a bad spine, or a numeric transform whose input
                has no values in the training set.
        """
        return fit_service(self._context, service, spine, timestamp, pin)

    def list_fits(self, service: str | None = None) -> list[FitArtifact]:
        """The fitted artifacts (of one service when given), newest first."""
        return list_fits(self.offline_database(), service)

    def pinned_fits(self) -> dict[str, str]:
        """Service → the id of the fit that serves it."""
        return pins(self.offline_database())

    def pin_fit(self, service: str, fit: str = "latest") -> FitArtifact:
        """Serve a fit of `service` from now on: an id, a unique prefix, or "latest".

        Raises:
            InputError: no such fit of the service.
        """
        artifact = pin_fit(self.offline_database(), service, fit)
        self._context.fits().pinned(service, artifact.id)
        return artifact

    def drift(self, baseline: str, current: str,
              features: Sequence[str] | str | None = None) -> DriftReport:
        """How far each feature's current values moved from a baseline's: PSI and
        Kolmogorov-Smirnov distance for numbers, L-infinity distance and Jensen-Shannon
        divergence for categories, against the registry's `drift:` thresholds.

        Args:
            baseline: a saved training set's name, a table file, or `fit:ID` (the
                profiles a fit kept of its service's features; "latest" works too).
            current: a saved training set's name, a table file, `served:DURATION` (the
                values the server logged in the last DURATION, such as `24h`), or
                `window:START..END` (the features at each event of their sources in
                [START, END), computed point in time).
            features: names, `view:feature` references or services to compare; default
                every registry feature found on both sides.

        Returns:
            A `DriftReport`: per feature its measures, thresholds and verdict;
            `.drifted` names the features over a threshold.

        Raises:
            InputError: a side that cannot be read (unknown set or fit, bad duration or
                window), an unknown feature, or no feature on both sides.
        """
        return detect_drift(self._context, baseline, current, features)

    def snapshot(
        self,
        at: object,
        entity: str | None = None,
        full_names: bool = False,
        output: Output = "pandas",
        engine: str | None = None,
    ) -> pd.DataFrame | pa.Table:
        """Batch scoring: every feature of every feature view for each entity at `at`.

        One row per distinct key seen in the views' sources before `at` (sorted by key),
        with the key columns then the features, each as a training set at `at` would
        give it.

        Args:
            at: the time: ISO-8601 text ("2024-03-31" is midnight; no offset means
                UTC) or a datetime (naive = UTC).
            entity: which entity; may be left out when feature views use only one.
            full_names: name feature columns `view__feature`.
            output: "pandas" or "arrow".
            engine: where partitions run (see `get_training_set`).

        Raises:
            InputError: bad arguments, or two features share a bare name.
            SourceError: a source cannot be read.
        """
        return build_snapshot(self._context, at, entity=entity, full_names=full_names,
                              output=output, engine=engine)

    def get_online_features(
        self,
        features: Sequence[str] | str | None = None,
        service: str | None = None,
        entities: Mapping[str, object] | None = None,
        request: Mapping[str, object] | None = None,
        at: object = None,
        full_names: bool = False,
        output: OnlineOutput = "dict",
        include_metadata: bool = False,
        transformed: bool = False,
        fit: str | None = None,
    ) -> dict[str, list] | pd.DataFrame | pa.Table | dict[str, Any]:
        """Feature values for entities at a time, from the online store (DESIGN §8).

        One round trip to the online store per call, whatever the number of entities
        and views; values are merged at `at` by the same kernels as training sets.

        Args:
            features: `view:feature` references or service names, in output order.
            service: a service name (instead of `features`).
            entities: entity key column → list of values (at most 1000 entities).
            request: request field → list of values, one per entity.
            at: the lookup time (default now): ISO-8601 text (no offset means UTC)
                or a datetime (naive = UTC); not before the materialization end.
            full_names: name feature columns `view__feature`.
            output: "dict" (column → list), "pandas" (a DataFrame) or "arrow" (a
                pyarrow Table), with the column types of `get_training_set`.
            include_metadata: return `{"features": <the columns>, "metadata": {...}}`
                instead of the columns alone; the metadata holds the lookup time and,
                per feature view read, each entity's status ("found"/"not_found": had
                online state or not), its newest event time and the materialization
                end, plus warnings (see `featurestore.serving.lookup_answer`), and with
                `transformed` the id of the fit applied ("fit").
            transformed: with `service`, append the service's transformed columns,
                computed from a fit's frozen statistics by the kernel that transformed
                training sets use, so both give the same values.
            fit: which fit: None (the pinned one), "latest", or an id (or unique prefix).

        Returns:
            The entity key columns, then one list per feature in request order (None
            for null; booleans are bools). Entities never seen get empty-window values
            (count and sum 0). Without `at`, a view whose data ended more than the
            longest requested window before now warns (FeatureStoreWarning): its
            windowed features are empty.

        Raises:
            InputError: bad features, keys, request fields or time (a `RequestError`
                whose `code` says which), or an unknown `output`.
            FeatureStoreError: nothing is materialized yet, or the online store was
                loaded by other definitions (run apply and materialize).
            OnlineStoreUnavailable: the online store cannot be reached.
        """
        return lookup_features(self._context, features=features, service=service, entities=entities,
                               request=request, at=at, full_names=full_names, output=output,
                               include_metadata=include_metadata, transformed=transformed,
                               fit=fit)

    def push(self, source: str, rows: object, *, via: str = "sdk", token: str | None = None,
             client: str | None = None) -> PushResult:
        """Ingest events of a source: stored durably, then folded into the online states
        so that the next lookup includes them (DESIGN §4.6).

        Args:
            source: a source that feature views read.
            rows: a pandas or polars DataFrame, an Arrow table, a list of dicts or a
                dict of columns (timestamp and entity keys required).
            via: how the push came, for its audit record (`push_audit`): "sdk",
                "cli" or "http".
            token: the name of the bearer token that authorized it, if any.
            client: the HTTP client's address, if any.

        Raises:
            InputError: unknown source, rows that do not match its schema, or an
                unknown `via`.
            FeatureStoreError: the online store was loaded by other definitions.
            OnlineStoreUnavailable: the online store cannot be reached.
        """
        return push_rows(self._context, source, rows, PushOrigin(via, token, client))

    def push_audit(self, source: str | None = None, since: object = None) -> list[PushRecord]:
        """Every stored push, oldest first: when, to which source, how many rows, how it
        came and, over HTTP, the token and client (read from the pushed segments).

        Args:
            source: only pushes to this source.
            since: only pushes at or after this time (ISO-8601 text or a datetime).

        Raises:
            InputError: `since` is not a time, or `source` is no source of the registry
                and has no pushes stored.
        """
        offline_dir = self.offline_path.parent
        records = read_push_audit(offline_dir, source, since)
        # A source since removed from the registry still shows what was pushed to it.
        if source is not None and source not in self.registry.sources and not (
                records or read_push_audit(offline_dir, source)):
            hint = did_you_mean(source, self.registry.sources)
            raise InputError(f"unknown source {source!r}{hint}")
        return records

    def validate(self, source: str | None = None) -> ValidationReport:
        """Check the expectations now, against every current row of the sources and the
        latest feature values; writes nothing.

        Args:
            source: only this source's expectations (features are not checked then).

        Returns:
            One verdict per rule; `.failed()` is True when a rule whose policy is fail
            or quarantine is broken (`.failed(strict=True)`: any rule).

        Raises:
            InputError: unknown source.
            SourceError: a source cannot be read.
        """
        return validate_expectations(self._context, source)

    def quarantine(self, source: str | None = None) -> list[QuarantineGroup]:
        """The quarantined rows materializations recorded, per source, column and rule:
        how many and the newest run that added some (`quarantined_rows` lists them)."""
        return quarantine_groups(self._context, source)

    def quarantined_rows(self, source: str, rule: str | None = None,
                         column: str | None = None,
                         limit: int | None = None) -> list[QuarantinedRow]:
        """A source's quarantined rows: the rule each broke, its value and the whole row."""
        return quarantined_rows(self._context, source, rule, column, limit)

    def verify(self, entities: int = 100, at: object = None, seed: int = 0,
               engine: str | None = None) -> VerifyReport:
        """Check that online values equal offline ones for sampled entities (DESIGN §4.5);
        the outcome is recorded (`featurestore.offline.check_history`).

        Args:
            entities: entities sampled per feature view.
            at: lookup times (one or a list of ISO-8601 texts or datetimes, naive =
                UTC), at or after the materialization end; default: the end and a few
                times after it.
            seed: the sample's seed.
            engine: where the offline side's partitions run (see `get_training_set`).

        Raises:
            FeatureStoreError: nothing is materialized, or by other definitions.
            InputError: a time before the materialization end.
        """
        return run_check(self._context, lambda: verify_online(
            self._context, entities=entities, at=at, seed=seed, engine=engine))

    def replay(self, since: object = None) -> ReplayReport:
        """Recompute every value the server logged (`serving.log_sample_rate`) with the
        offline engine, over the events of the online state that answered, and compare
        exactly (see `featurestore.offline.replay`); the outcome is recorded
        (`featurestore.offline.check_history`).

        Args:
            since: only lookups logged at or after this time (ISO-8601 text or a
                datetime, naive = UTC); default: the whole log.

        Returns:
            A `ReplayReport`: values checked, mismatches (the first ten in full) and
            values that cannot be replayed, by reason; `.ok` is False on any mismatch.

        Raises:
            InputError: `since` is not a time, or a log segment cannot be read.
            OnlineStoreUnavailable: the online store cannot be reached.
        """
        since_us = None if since is None else to_micros(since, "since")
        log = read_served_log(served_log_dir(self.offline_path), since_us)
        return run_check(self._context, lambda: replay_log(self._context, log))

    def stats(self, source: str | None = None,
              training_set: str | os.PathLike[str] | None = None, view: str | None = None,
              columns: Sequence[str] | None = None) -> DatasetStatistics:
        """Statistics of a source, a training-set file or a view's latest values, in one
        DuckDB pass (see `featurestore.statistics`).

        Args:
            source: a source's name (pushed events included).
            training_set: a .parquet, .csv, .json/.jsonl, .arrow or .feather file.
            view: a feature view: the latest values of its last materialization.
            columns: the columns (features) to profile; default all (a view's features).

        Returns:
            A frozen `DatasetStatistics`: per column count, nulls, min, max, mean,
            population std (ddof 0), quantiles, histogram or top values, distinct count;
            `.to_dict()` for JSON, `.render()` for a text table.

        Raises:
            InputError: not exactly one of source, training_set and view; an unknown
                source, view or column; a missing or unreadable file.
            NotMaterializedError: the view was never materialized.
            SourceError: the source cannot be read.
        """
        return compute_statistics(self._context, source=source, training_set=training_set,
                                  view=view, columns=columns)

    def view_statistics_history(self, view: str) -> list[ViewStatisticsRun]:
        """The statistics each materialization stored for `view`, oldest first.

        Raises:
            InputError: no feature view is named `view`.
            NotMaterializedError: the view was never materialized.
        """
        return view_statistics_history(self._context, view)

    def kernels(self) -> CompiledGraph:
        """The compiled transform graph of this registry (compiled once, cached on disk).

        Reads each source's schema (a short read of the offline file for table and query
        sources) so expressions are typed against the real columns.

        Raises:
            SourceError: a source is missing or lacks a column a feature needs.
            RegistryError: a definition cannot be compiled (located in the file).
        """
        return self._context.kernels()

    def catalog(self) -> Catalog:
        """What the registry holds, with feature types and each view's last
        materialization: `catalog().entries("features", tags={"team": "risk"})` lists,
        `catalog().describe("user_txn:amount_sum_7d")` describes.

        Types come from the compiled graph, which reads the sources' schemas; when a
        source cannot be read, the catalog still answers with the types unknown.
        """
        try:
            kernels = self.kernels()
        except FeatureStoreError as error:
            problem = "; ".join(error.problems) if isinstance(error, RegistryError) else str(error)
            return Catalog(self.registry, None, problem, last_runs(self._context, None),
                           list_training_sets(self._context), self.list_fits(),
                           self.pinned_fits())
        keys = compiled_state_keys(self.registry, kernels)
        return Catalog(self.registry, feature_types(kernels), None,
                       last_runs(self._context, keys), list_training_sets(self._context),
                       self.list_fits(), self.pinned_fits())

    def list(self, kind: str, tags: Mapping[str, str | None] | None = None
             ) -> list[CatalogEntry]:
        """The definitions of one kind: "entities", "sources", "views", "features" or
        "services", in file order, or the saved "training-sets", oldest first;
        `tags={"team": "risk"}` keeps those with every given tag (a value of None: any
        value). A feature carries its view's tags too.

        Raises:
            InputError: an unknown kind.
        """
        return self.catalog().entries(kind, tags)

    def describe(self, name: str) -> Description:
        """A feature view, request view, feature (`view:feature`, or a bare name found in
        one view), service, entity or source: its definition, types, window and hop
        spelled out, description, tags, owner, lineage and last materialization.
        `render()` gives the text `featurestore describe` prints.

        Raises:
            InputError: nothing has that name.
        """
        return self.catalog().describe(name)

    def create_token(self, name: str, scopes: Sequence[str]) -> str:
        """Create a bearer token for the HTTP server and return it: it is shown only
        now, the offline file keeps its SHA-256 alone (`featurestore.tokens`).

        Args:
            name: letters, digits and underscores; no active token may have it.
            scopes: "read" (lookups, /registry) and/or "push" (POST /push).

        Raises:
            InputError: an invalid name or scope, or an active token of that name.
        """
        return tokens.create_token(self.offline_database(), name, scopes)

    def list_tokens(self) -> list[tokens.TokenInfo]:
        """Every token, active and revoked, with its scopes and times (never the token)."""
        return tokens.list_tokens(self.offline_database())

    def revoke_token(self, name: str) -> None:
        """Revoke the active token of that name; running servers refuse it within a few
        seconds.

        Raises:
            InputError: no active token has that name.
        """
        tokens.revoke_token(self.offline_database(), name)

    def online_store(self) -> OnlineStore:
        """The online store client (opened on first use, then reused)."""
        return self._context.online_store()

    def offline_database(self) -> AppliedState:
        """The offline DuckDB file: `run(work)` gives `work` a connection, retrying while
        another process holds the file's write lock."""
        return self._context.offline_database()

    def close(self) -> None:
        """Release the online store connection (the offline file is never held open)."""
        self._context.close()

    def applied(self) -> AppliedRegistry | None:
        """The applied version recorded in the offline file, or None."""
        return self._context.applied()

    def deployment(self, poll_seconds: float = POLL_SECONDS) -> Deployment:
        """What a server serves: the newest consistent pair of registry version and online
        states, followed as versions are applied and materialized (see
        `featurestore.serving.deployment`).

        Args:
            poll_seconds: how often `Deployment.start`'s thread looks for new versions.
        """
        return Deployment(self._context, poll_seconds)

    @property
    def context(self) -> StoreContext:
        """What the layers below work with: registry, paths, kernels and store clients."""
        return self._context
