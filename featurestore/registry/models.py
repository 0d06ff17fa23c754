"""Typed, immutable models of registry.yaml (DESIGN §3).

The models check the shape of each definition (keys, types, names, durations,
aggregation names); relations between definitions (does the source exist, is the
window a multiple of its hop, ...) are checked in `checks.py`, which can report them
with positions. Durations are stored in microseconds and written back as `1h`, `7d`.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from featurestore.credentials import redact_url
from featurestore.errors import SourceError
from featurestore.executors.engines import engine_problem
from featurestore.registry.drift_settings import DriftSettings
from featurestore.registry.durations import DurationSyntaxError, format_duration, parse_duration
from featurestore.registry.expectations import (
    ColumnExpectation,
    FeatureExpectation,
    Freshness,
    RowCountChange,
)
from featurestore.registry.serving_settings import Serving
from featurestore.registry.suggestions import did_you_mean
from featurestore.registry.yaml_values import describe_value
from transforms.fitted_functions import FUNCTIONS, IMPUTE_STRATEGIES
from transforms.spec import (
    AGGREGATIONS,
    ColumnType,
    FeatureSpec,
    GraphSpec,
    RequestViewSpec,
    ViewSpec,
    default_hop,
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MEMBER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z_][A-Za-z0-9_]*)?")

# Words people write for an aggregation that spelling similarity would not suggest.
AGGREGATION_SYNONYMS = {
    "avg": "mean",
    "average": "mean",
    "stddev": "std",
    "stdev": "std",
    "total": "sum",
    "minimum": "min",
    "maximum": "max",
}

# Type names from other systems, mapped to the closest request type.
REQUEST_TYPE_SYNONYMS = {
    "float": "float64",
    "double": "float64",
    "int": "int64",
    "integer": "int64",
    "long": "int64",
    "boolean": "bool",
    "datetime": "timestamp",
    "str": "string",
    "text": "string",
    "varchar": "string",
}

REQUEST_TYPES: dict[str, ColumnType] = {
    "float64": ColumnType.FLOAT,
    "float32": ColumnType.FLOAT,
    "int64": ColumnType.INT,
    "int32": ColumnType.INT,
    "bool": ColumnType.BOOL,
    "timestamp": ColumnType.TIMESTAMP,
    "string": ColumnType.STRING,
}

ONLINE_SCHEMES = ("redis://", "rediss://", "redis+cluster://")


def _check_name(value: str) -> str:
    if _NAME.fullmatch(value) is None:
        raise PydanticCustomError(
            "name",
            "'{name}' is not a valid name: use letters, digits and underscores, "
            "not starting with a digit",
            {"name": value},
        )
    if keyword.iskeyword(value):
        raise PydanticCustomError(
            "name", "'{name}' is a reserved word and cannot be a name", {"name": value}
        )
    return value


def _to_microseconds(value: object) -> int:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration_type",
            "expected a duration such as '90s', '5m', '1h' or '7d', got {got}",
            {"got": describe_value(value)},
        )
    try:
        return parse_duration(value)
    except DurationSyntaxError as error:
        raise PydanticCustomError("duration", "{reason}", {"reason": str(error)}) from None


def _whole_number(value: object) -> object:
    # pydantic's lax int would read `true` as 1 and '5' or 5.0 as 5: a count is written
    # as a whole number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError(
            "whole_number", "expected a whole number, got {got}", {"got": describe_value(value)}
        )
    return value


def _quantile_list(value: object) -> object:
    if not isinstance(value, list):
        raise PydanticCustomError(
            "quantile_list", "expected a list of quantiles such as [0.5, 0.9], got {got}",
            {"got": describe_value(value)},
        )
    return value


def _quantile(value: object) -> object:
    # pydantic's lax float would read `true` as 1.0 and '0.5' as 0.5: a quantile is
    # written as a number. Its range is checked in checks.py, with the other parameters.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "quantile", "each quantile in 'q' must be a number from 0 to 1, got {got}",
            {"got": describe_value(value)},
        )
    return value


def show_number(value: float) -> str:
    """`0.5`, `1`, `0.999`: a number as it would be written in the file."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _check_aggregation(value: str) -> str:
    if value not in AGGREGATIONS:
        raise PydanticCustomError(
            "aggregation",
            "unknown aggregation '{agg}': expected one of {choices}{hint}",
            {
                "agg": value,
                "hint": did_you_mean(value, AGGREGATIONS, AGGREGATION_SYNONYMS),
                "choices": ", ".join(AGGREGATIONS),
            },
        )
    return value


CHANGE_POLICIES = ("append", "rewrite")

TIMESTAMP_UNITS = ("s", "ms", "us", "ns")
"""Units a source's epoch-integer timestamps may be in (see `featurestore.times.EPOCH_UNITS`)."""

# Names people write for a unit that spelling similarity would not suggest.
TIMESTAMP_UNIT_SYNONYMS = {
    "sec": "s", "second": "s", "seconds": "s", "millis": "ms", "milliseconds": "ms",
    "micros": "us", "microseconds": "us", "nanos": "ns", "nanoseconds": "ns",
}


def _check_timestamp_unit(value: str) -> str:
    if value not in TIMESTAMP_UNITS:
        raise PydanticCustomError(
            "timestamp_unit",
            "unknown timestamp unit '{value}': expected s, ms, us or ns{hint}",
            {"value": value, "hint": did_you_mean(value, TIMESTAMP_UNITS, TIMESTAMP_UNIT_SYNONYMS)},
        )
    return value


def _check_changes(value: str) -> str:
    if value not in CHANGE_POLICIES:
        raise PydanticCustomError(
            "changes",
            "unknown change policy '{value}': expected append (rows are only ever added) "
            "or rewrite (rows may change or go){hint}",
            {"value": value, "hint": did_you_mean(value, CHANGE_POLICIES)},
        )
    return value


def _check_request_type(value: str) -> str:
    if value not in REQUEST_TYPES:
        raise PydanticCustomError(
            "request_type",
            "unknown type '{type}': expected one of {choices}{hint}",
            {
                "type": value,
                "hint": did_you_mean(value, REQUEST_TYPES, REQUEST_TYPE_SYNONYMS),
                "choices": ", ".join(REQUEST_TYPES),
            },
        )
    return value


def _check_member(value: str) -> str:
    if _MEMBER.fullmatch(value) is None:
        raise PydanticCustomError(
            "service_member",
            "'{member}' is not a feature reference: write 'view:feature' or a service name",
            {"member": value},
        )
    return value


def _check_online(value: str) -> str:
    if value != "local" and not value.startswith(ONLINE_SCHEMES):
        raise PydanticCustomError(
            "online",
            "expected 'local', a redis:// or a redis+cluster:// URL, got '{value}'{hint}",
            {"value": redact_url(value), "hint": did_you_mean(value, ["local"])},
        )
    return value


def _check_engine(value: str) -> str:
    problem = engine_problem(value)
    if problem is not None:
        raise PydanticCustomError("engine", "{problem}", {"problem": problem})
    return value


def _tag_value(value: object) -> str:
    """A tag value as text: YAML may read `tier: 1` or `pii: true` as a number or bool."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PydanticCustomError(
        "tag_value", "a tag value must be text or a number, got {got}",
        {"got": describe_value(value)},
    )


def _at_least_one(what: str) -> AfterValidator:
    """A validator that rejects an empty list or mapping, saying what is missing."""

    def check(value: Any) -> Any:
        if len(value) == 0:
            raise PydanticCustomError("empty", "needs at least one {what}", {"what": what})
        return value

    return AfterValidator(check)


Name = Annotated[str, AfterValidator(_check_name)]
"""A definition or column name: an identifier that is not a Python keyword."""

Duration = Annotated[
    int, BeforeValidator(_to_microseconds), PlainSerializer(format_duration, return_type=str)
]
"""A duration written `90s`/`5m`/`1h`/`7d`, held in microseconds."""

Aggregation = Annotated[str, AfterValidator(_check_aggregation)]
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
"""An integer written as one: not a boolean, a fraction or text."""
Quantiles = Annotated[list[Annotated[float, BeforeValidator(_quantile)]],
                      BeforeValidator(_quantile_list)]
"""A list of numbers (not booleans or text), each meant to be in [0, 1]."""
RequestType = Annotated[str, AfterValidator(_check_request_type)]
ServiceMember = Annotated[str, AfterValidator(_check_member)]
TagValue = Annotated[str, BeforeValidator(_tag_value)]


class Definition(BaseModel):
    """Base of every registry model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Described(Definition):
    """What a person reads about a definition; none of it changes any value.

    Attributes:
        description: free text.
        tags: a mapping of tag name to value (`team: risk`), filterable with
            `featurestore list features --tag team=risk`.
        owner: who to ask (a person, a team, an address).
    """

    description: str | None = None
    tags: dict[Name, TagValue] = {}
    owner: str | None = None


class Store(Definition):
    """Where data lives. Paths are relative to the registry file.

    Attributes:
        offline: DuckDB file; None means `<project>.duckdb` next to the registry file.
        online: "local" (the embedded store), a redis:// URL, or a Redis Cluster
            as redis+cluster://host:port,host:port,...
        engine: where partitions run: "local" (this process) or "dask://host:port" (the
            workers of a Dask scheduler); FEATURESTORE_ENGINE and per-call `engine=`
            arguments win over it.
        work_dir: the shared folder dask runs write their parts under; None means
            `.work` beside the offline file (FEATURESTORE_WORK_DIR wins).
    """

    offline: str | None = None
    online: Annotated[str, AfterValidator(_check_online)] = "local"
    engine: Annotated[str, AfterValidator(_check_engine)] = "local"
    work_dir: str | None = None


class Entity(Definition):
    """What features are about (a user, a card); `keys` are its join-key columns."""

    keys: Annotated[tuple[Name, ...], _at_least_one("key column")]


class Source(Definition):
    """An event log: exactly one of a file `path`, a DuckDB `table` or a SQL `query`.

    Attributes:
        path: Parquet or CSV file or glob, relative to the registry file.
        table: name of a table in the offline DuckDB file.
        query: SQL run by DuckDB.
        timestamp: the event-time column.
        timestamp_unit: `s`, `ms`, `us` or `ns` when the timestamp column holds epoch
            integers in that unit (nanoseconds are floored to microseconds); None (the
            default) when it holds timestamps.
        changes: how a table or query changes between materializations: `append`
            (rows are only ever added, at any event time) or `rewrite` (rows may also
            change or go; the default). Files need no declaration: each file's size,
            modification time and row count are recorded and compared.
        expect: column → its rules (`featurestore.registry.expectations`).
        freshness: how old the newest event may be.
        row_count_change: how much the row count may change between materializations.
    """

    path: str | None = None
    table: str | None = None
    query: str | None = None
    timestamp: Name
    timestamp_unit: Annotated[str, AfterValidator(_check_timestamp_unit)] | None = None
    changes: Annotated[str, AfterValidator(_check_changes)] | None = None
    expect: dict[Name, ColumnExpectation] = {}
    freshness: Freshness | None = None
    row_count_change: RowCountChange | None = None

    @model_validator(mode="after")
    def _check_one_location(self) -> Source:
        given = [key for key in ("path", "table", "query") if getattr(self, key) is not None]
        if len(given) != 1:
            found = " and ".join(f"'{key}'" for key in given) or "none"
            raise PydanticCustomError(
                "source_location",
                "give exactly one of 'path', 'table' or 'query' (found {found})",
                {"found": found},
            )
        if self.changes is not None and self.path is not None:
            raise PydanticCustomError(
                "source_changes",
                "'changes' applies to table and query sources; file sources are "
                "fingerprinted (size, modification time, row count) instead",
            )
        return self

    @property
    def change_policy(self) -> str:
        """`append` or `rewrite` for tables and queries; `files` for a path."""
        if self.path is not None:
            return "files"
        return self.changes or "rewrite"

    def resolve_path(self, base_dir: Path) -> str | None:
        """The file path (or glob) made absolute against `base_dir`; None if no `path`."""
        if self.path is None:
            return None
        return str(base_dir / self.path)


class Feature(Described):
    """One aggregation of a feature view (and its description, tags and owner).

    Attributes:
        agg: one of `transforms.spec.AGGREGATIONS`.
        expr: expression over source columns; None only for `count` and `decayed_count`.
        window: window length in microseconds; None for a lifetime aggregation.
        hop: hop in microseconds; None means the view's hop or the default.
        n: how many values `last_n` / `first_n` keep.
        k: how many values `top_k` returns.
        half_life: the half-life of `decayed_sum` / `decayed_count`, in microseconds.
        precision: the HyperLogLog precision of `approx_count_distinct` (None: the
            default, `transforms.aggregations.DEFAULTS`).
        q: the quantiles `approx_percentile` gives, in the order of its list value.
        expect: rules on its latest values, checked at materialize.
    """

    agg: Aggregation
    expr: str | None = None
    window: Duration | None = None
    hop: Duration | None = None
    n: WholeNumber | None = None
    k: WholeNumber | None = None
    half_life: Duration | None = None
    precision: WholeNumber | None = None
    q: Quantiles | None = None
    expect: FeatureExpectation | None = None

    def summary(self) -> str:
        """The aggregation as people read it: `sum of amount`, `last_n(5) of amount`,
        `approx_percentile([0.5, 0.9]) of amount`, `decayed_sum of amount, half-life 1h`,
        `approx_count_distinct of user_id, precision 12` (window and hop not included)."""
        count = self.n if self.n is not None else self.k
        what = self.agg if count is None else f"{self.agg}({count})"
        if self.q is not None:
            what = f"{self.agg}([{', '.join(show_number(q) for q in self.q)}])"
        if self.expr is not None:
            what = f"{what} of {self.expr}"
        if self.half_life is not None:
            what = f"{what}, half-life {format_duration(self.half_life)}"
        if self.precision is not None:
            what = f"{what}, precision {self.precision}"
        return what


class FeatureView(Described):
    """Aggregations over one source, keyed by one entity (and its description, tags and
    owner, which its features inherit unless they set their own).

    Attributes:
        source: name of the source.
        entity: name of the entity.
        hop: default hop (microseconds) for this view's windowed features.
        features: feature name → definition, in file order.
    """

    source: Name
    entity: Name
    hop: Duration | None = None
    features: Annotated[dict[Name, Feature], _at_least_one("feature")]


class RequestView(Definition):
    """Features computed at request time from request fields and view features.

    Attributes:
        request: field name → type (float64, float32, int64, int32, bool, timestamp,
            string). String fields are compared with string literals (==, !=, in,
            not in) or passed to lower, length and startswith; their text never
            reaches a kernel (`transforms/string_terms.py`).
        features: feature name → expression text.
    """

    request: dict[Name, RequestType] = {}
    features: Annotated[dict[Name, str], _at_least_one("feature")]


def _check_function(value: str) -> str:
    if value not in FUNCTIONS:
        raise PydanticCustomError(
            "transform_fn", "unknown transform function '{fn}': expected one of {choices}{hint}",
            {"fn": value, "choices": ", ".join(FUNCTIONS), "hint": did_you_mean(value, FUNCTIONS)},
        )
    return value


def _check_strategy(value: str) -> str:
    if value not in IMPUTE_STRATEGIES:
        raise PydanticCustomError(
            "impute_strategy", "unknown strategy '{value}': expected one of {choices}{hint}",
            {"value": value, "choices": ", ".join(IMPUTE_STRATEGIES),
             "hint": did_you_mean(value, IMPUTE_STRATEGIES)},
        )
    return value


def _at_least(minimum: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < minimum:
            raise PydanticCustomError("too_small", "must be at least {minimum}, got {value}",
                                      {"minimum": minimum, "value": value})
        return value

    return AfterValidator(check)


def _check_quantiles(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if not 0.0 <= low < high <= 1.0:
        raise PydanticCustomError(
            "quantiles",
            "expected [lower, upper] with 0 <= lower < upper <= 1, got [{low}, {high}]",
            {"low": low, "high": high},
        )
    return value


class Transform(Definition):
    """A full-pass transform of one of its service's features (`transforms.fitted_functions`).

    Attributes:
        fn: the function (zscore, min_max, robust_scale, quantile_bucket, clip_quantiles,
            impute, vocabulary, one_hot, hash_bucket, log1p).
        of: the feature it reads: its bare name in the service, or `view:feature`.
        buckets: quantile_bucket (at least 2) and hash_bucket (at least 1).
        quantiles: clip_quantiles' [lower, upper] levels (default [0.01, 0.99]).
        strategy: impute's mean, median, most_frequent or constant.
        value: impute's constant.
        top_k: vocabulary (default all) and one_hot (default 10): keep the most frequent.
        min_count: vocabulary and one_hot: keep values seen at least this often (default 1).
        oov_buckets: vocabulary: buckets for unseen values (default 1; 0 makes them null).
        description: free text.
    """

    fn: Annotated[str, AfterValidator(_check_function)]
    of: ServiceMember
    buckets: Annotated[int, _at_least(1)] | None = None
    quantiles: Annotated[tuple[float, float], AfterValidator(_check_quantiles)] | None = None
    strategy: Annotated[str, AfterValidator(_check_strategy)] | None = None
    value: bool | int | float | str | None = None
    top_k: Annotated[int, _at_least(1)] | None = None
    min_count: Annotated[int, _at_least(1)] | None = None
    oov_buckets: Annotated[int, _at_least(0)] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _check_parameters(self) -> Transform:
        function = FUNCTIONS[self.fn]
        given = [name for name in self.parameters() if getattr(self, name) is not None]
        for name in given:
            if name not in function.parameters:
                takes = ", ".join(function.parameters) or "no parameters"
                raise PydanticCustomError(
                    "transform_parameter", "'{name}' does not apply to {fn} (it takes {takes})",
                    {"name": name, "fn": self.fn, "takes": takes})
        for name in function.required:
            if getattr(self, name) is None:
                raise PydanticCustomError("transform_parameter", "{fn} needs '{name}'",
                                          {"fn": self.fn, "name": name})
        if self.fn == "quantile_bucket" and self.buckets is not None and self.buckets < 2:
            raise PydanticCustomError("transform_parameter",
                                      "quantile_bucket needs at least 2 buckets, got {buckets}",
                                      {"buckets": self.buckets})
        if (self.strategy == "constant") != (self.value is not None):
            message = ("impute with strategy 'constant' needs 'value'"
                       if self.value is None else "'value' applies only to strategy 'constant'")
            raise PydanticCustomError("transform_parameter", message)
        return self

    @staticmethod
    def parameters() -> tuple[str, ...]:
        """The keys besides `fn`, `of` and `description`."""
        return ("buckets", "quantiles", "strategy", "value", "top_k", "min_count", "oov_buckets")

    def __str__(self) -> str:
        parameters = "".join(f", {k}={v}" for k, v in self.given_parameters().items())
        return f"{self.fn}({self.of}{parameters})"

    def given_parameters(self) -> dict[str, object]:
        """The parameters written in the registry."""
        return {name: getattr(self, name) for name in self.parameters()
                if getattr(self, name) is not None}


def _service_form(value: object) -> object:
    # The list form `[view:feature, ...]` is the mapping form with features only.
    if isinstance(value, list | tuple):
        return {"features": value}
    return value


class Service(Definition):
    """A named set of features, and the full-pass transforms fitted over them.

    Written as a list of members, or as a mapping with `features` (that list) and
    `transforms`.

    Attributes:
        features: `view:feature` references and names of other services, in order.
        transforms: output name → transform, in file order.
    """

    features: Annotated[tuple[ServiceMember, ...], _at_least_one("feature")]
    transforms: dict[Name, Transform] = {}


ServiceDefinition = Annotated[Service, BeforeValidator(_service_form)]


class Registry(Definition):
    """A whole registry.yaml. Build it with `featurestore.registry.parse_registry`,
    which also runs the cross-reference checks."""

    project: Name
    store: Store = Store()
    entities: dict[Name, Entity] = {}
    sources: dict[Name, Source] = {}
    feature_views: dict[Name, FeatureView] = {}
    request_views: dict[Name, RequestView] = {}
    services: dict[Name, ServiceDefinition] = {}
    serving: Serving = Serving()
    drift: DriftSettings = DriftSettings()

    def effective_hop(self, view: str, feature: str) -> int | None:
        """The hop (microseconds) a feature uses: its own, its view's, or the default.

        Returns None for a lifetime aggregation (no window, no hop).
        """
        view_definition = self.feature_views[view]
        definition = view_definition.features[feature]
        if definition.window is None:
            return None
        if definition.hop is not None:
            return definition.hop
        if view_definition.hop is not None:
            return view_definition.hop
        return default_hop(definition.window)

    def service_features(self, service: str) -> tuple[tuple[str, str], ...]:
        """The (view, feature) references of a service, nested services expanded.

        Order is as listed; a reference reached twice is kept once (first place).
        """
        found: dict[tuple[str, str], None] = {}
        self._expand_service(service, found, (service,))
        return tuple(found)

    def transform_input(self, service: str, of: str) -> tuple[str, str] | None:
        """The (view, feature) a transform's `of` names among its service's features:
        `view:feature`, or a bare feature name; None when it names none of them."""
        features = self.service_features(service)
        if ":" in of:
            view, feature = of.split(":", 1)
            return (view, feature) if (view, feature) in features else None
        found = [ref for ref in features if ref[1] == of]
        return found[0] if len(found) == 1 else None

    def _expand_service(
        self, service: str, found: dict[tuple[str, str], None], trail: tuple[str, ...]
    ) -> None:
        for member in self.services[service].features:
            if ":" in member:
                view, feature = member.split(":", 1)
                found.setdefault((view, feature), None)
            elif member in self.services and member not in trail:
                self._expand_service(member, found, (*trail, member))

    def to_graph_spec(self, schemas: Mapping[str, Mapping[str, ColumnType]]) -> GraphSpec:
        """Translate the registry into the compiler's input.

        Args:
            schemas: source name → column name → type, for every source a feature
                view reads (extra sources are ignored).

        Returns:
            The GraphSpec, with windows and hops in microseconds (hop resolved from
            the feature, its view or the default; None for lifetime aggregations).

        Raises:
            SourceError: a source used by a feature view has no schema.
        """
        views = tuple(self._view_spec(name) for name in self.feature_views)
        request_views = tuple(
            RequestViewSpec(
                name=name,
                request=tuple((field, REQUEST_TYPES[kind]) for field, kind in view.request.items()),
                features=tuple(view.features.items()),
            )
            for name, view in self.request_views.items()
        )
        used = [name for name in self.sources if any(v.source == name for v in views)]
        missing = [name for name in used if name not in schemas]
        if missing:
            raise SourceError(f"no column schema given for source '{missing[0]}'")
        return GraphSpec(
            views=views,
            request_views=request_views,
            schemas=tuple((name, tuple(schemas[name].items())) for name in used),
        )

    def _view_spec(self, name: str) -> ViewSpec:
        view = self.feature_views[name]
        return ViewSpec(
            name=name,
            source=view.source,
            keys=self.entities[view.entity].keys,
            timestamp=self.sources[view.source].timestamp,
            features=tuple(
                FeatureSpec(
                    name=feature,
                    agg=definition.agg,
                    expr=definition.expr,
                    window_us=definition.window,
                    hop_us=self.effective_hop(name, feature),
                    n=definition.n,
                    k=definition.k,
                    half_life_us=definition.half_life,
                    precision=definition.precision,
                    q=tuple(definition.q) if definition.q is not None else None,
                )
                for feature, definition in view.features.items()
            ),
        )
