"""The transform graph: every definition parsed, typed and laid out for code generation.

`build_graph` turns a `GraphSpec` into plans: for each feature view, its distinct row
expressions (shared between features that use the same one), its aggregation *groups*
(features with the same hop share one set of tiles; lifetime features share a running
state) with every feature's slot offset; for each request view, its typed expressions
and the view features they read. The graph is layered (sources → row expressions →
aggregations → request features) and request features may read only feature views, so it
is acyclic by construction; what remains to check is names and types, done here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from transforms import aggregations
from transforms.errors import GraphError
from transforms.expression_types import infer_type
from transforms.expressions import (
    Expr,
    ExpressionError,
    parse_expression,
    referenced_names,
    string_literals,
)
from transforms.spec import ColumnType, FeatureSpec, GraphSpec, RequestViewSpec, ViewSpec
from transforms.string_terms import find_string_terms, replace_terms, term_name
from transforms.windows import max_blocks, top_level

NUMERIC = (ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL)


@dataclass(frozen=True)
class FeaturePlan:
    """One aggregation feature: where its state lives and what it reads."""

    name: str
    index: int  # position in the view's feature list (output row)
    agg: str
    expr_index: int  # column of the row-expression matrix; -1 = every event counts
    window_us: int | None
    hop_us: int | None
    offset: int  # first slot in its group's state vector
    result_type: ColumnType  # a list feature's: the type of its entries
    param: int = 0  # n, k or the half-life in microseconds (aggregations.PARAMETERS)
    items: int = 0  # output rows beyond its own (aggregations.output_items)
    item_row: int = -1  # the first of those rows
    quantiles: tuple[float, ...] = ()  # approx_percentile's q

    @property
    def is_list(self) -> bool:
        """Whether the value is a list (last_n, first_n, top_k), not a scalar."""
        return self.items > 0

    @property
    def ranked(self) -> bool:
        """Whether the list holds (value, count) pairs (top_k)."""
        return self.agg in aggregations.RANKED_AGGREGATIONS


@dataclass
class GroupPlan:
    """Features sharing one hop (and so one set of tiles); hop None = lifetime."""

    hop_us: int | None
    features: list[FeaturePlan] = field(default_factory=list)
    width: int = 0
    levels: int = 1
    windows: list[int] = field(default_factory=list)  # distinct windows, ascending

    @property
    def max_window_us(self) -> int:
        """Longest window of the group (how far back online tiles must reach)."""
        return max(self.windows) if self.windows else 0

    def block_bound(self) -> int:
        """Upper bound on tiles in any one of this group's window decompositions."""
        if self.hop_us is None:
            return 1
        return max(max_blocks(w // self.hop_us, self.levels) for w in self.windows)


@dataclass
class ViewPlan:
    """Everything code generation needs for one feature view."""

    spec: ViewSpec
    input_columns: list[str]
    column_types: dict[str, ColumnType]
    expressions: list[Expr]
    literals: list[tuple[str, str]]  # (column, string literal) compared in expressions
    groups: list[GroupPlan]  # windowed groups, by ascending hop (a sketch's after others)
    lifetime: GroupPlan
    features: list[FeaturePlan]

    @property
    def output_rows(self) -> int:
        """Rows of the kernels' output: one per feature, then list entries."""
        return len(self.features) + sum(f.items for f in self.features)

    @property
    def string_columns(self) -> list[str]:
        """Input columns that hold dictionary codes."""
        return [c for c in self.input_columns if self.column_types[c] == ColumnType.STRING]


@dataclass(frozen=True)
class RequestInputs:
    """What request-view features read: the one definition both paths use to decide
    which request fields and view features a selection needs.

    Attributes:
        fields: request fields (spine columns offline, request values online).
        features: (feature view, feature) references.
    """

    fields: frozenset[str] = frozenset()
    features: frozenset[tuple[str, str]] = frozenset()

    def union(self, other: RequestInputs) -> RequestInputs:
        """The inputs of both."""
        return RequestInputs(self.fields | other.fields, self.features | other.features)


@dataclass
class RequestPlan:
    """Typed expressions of one request view and the inputs they read.

    String request fields never reach the kernel: each string term of the expressions
    (`transforms/string_terms.py`) is evaluated outside it, and the kernel reads the
    term's values as an input named by the term's text.
    """

    spec: RequestViewSpec
    expressions: list[Expr]  # as written (typed)
    # non-string request fields, then string terms, then "view.feature" names: the
    # kernel's inputs in argument order
    inputs: list[str]
    dependencies: list[tuple[str, str]]
    feature_inputs: dict[str, RequestInputs]  # by feature: what its expression reads
    kernel_expressions: list[Expr] = field(default_factory=list)  # terms replaced
    string_terms: list[tuple[str, Expr]] = field(default_factory=list)  # input name, term
    # by feature: its expression's type (the kernel gives float64; outputs convert)
    feature_types: dict[str, ColumnType] = field(default_factory=dict)


@dataclass
class Graph:
    """The checked graph of a whole registry."""

    spec: GraphSpec
    views: list[ViewPlan]
    request_views: list[RequestPlan]


def build_graph(spec: GraphSpec) -> Graph:
    """Parse, type and lay out every definition.

    Raises:
        GraphError: for the first definition that cannot be compiled, with its path.
    """
    views = [_plan_view(view, spec.schema(view.source)) for view in spec.views]
    by_name = {plan.spec.name: plan for plan in views}
    requests = [_plan_request_view(rv, by_name) for rv in spec.request_views]
    return Graph(spec=spec, views=views, request_views=requests)


def _parse(text: str, path: tuple[str, ...], names: dict[str, ColumnType],
           string_functions: bool = True) -> tuple[Expr, ColumnType]:
    try:
        expr = parse_expression(text)
        return expr, infer_type(expr, names, string_functions)
    except ExpressionError as error:
        raise GraphError(path, str(error), error.column) from None


def _plan_view(view: ViewSpec, schema: dict[str, ColumnType]) -> ViewPlan:
    expressions: list[Expr] = []
    columns: list[str] = []
    literals: list[tuple[str, str]] = []
    # Windowed features group by hop; each sketch gets a group (a set of tiles) of its
    # own, so its wide states do not widen the tiles of the others.
    groups: dict[tuple[int, str] | None, GroupPlan] = {}
    features: list[FeaturePlan] = []
    for index, feature in enumerate(view.features):
        path = ("feature_views", view.name, "features", feature.name)
        expr_index, expr_type = -1, ColumnType.INT
        if feature.expr is not None:
            expr, expr_type = _parse(feature.expr, (*path, "expr"), schema,
                                     string_functions=False)
            if expr not in expressions:
                expressions.append(expr)
            expr_index = expressions.index(expr)
            used, _ = referenced_names(expr)
            columns.extend(c for c in sorted(used) if c not in columns)
            literals.extend(p for p in sorted(string_literals(expr)) if p not in literals)
        elif feature.agg not in aggregations.COUNTING:
            raise GraphError((*path, "agg"), f"'{feature.agg}' needs an 'expr'")
        result = _result_type(feature.agg, expr_type, (*path, "agg"))
        param = _parameter(feature, path)
        # A windowed `last` is the latest event before t if that event is inside the
        # window: one running (time, value) pair answers it exactly, with no tiles. So
        # are the n latest: those of the n latest overall that fall inside the window.
        tiled = feature.window_us is not None and feature.agg not in ("last", "last_n")
        hop = feature.hop_us if tiled else None
        sketch = feature.name if feature.agg in aggregations.SKETCHES else ""
        key = None if hop is None else (hop, sketch)
        group = groups.setdefault(key, GroupPlan(hop_us=hop))
        plan = FeaturePlan(feature.name, index, feature.agg, expr_index, feature.window_us,
                           feature.hop_us, group.width, result, param,
                           aggregations.output_items(feature.agg, param),
                           quantiles=tuple(float(q) for q in feature.q or ()))
        group.width += aggregations.width(feature.agg, param)
        group.features.append(plan)
        features.append(plan)
    next_row = len(features)
    for k, plan in enumerate(features):
        if plan.items:
            features[k] = plan = replace(plan, item_row=next_row)
            next_row += plan.items
    for group in groups.values():
        group.features = [features[f.index] for f in group.features]
    for key, group in groups.items():
        if key is not None:
            group.windows = sorted({f.window_us for f in group.features if f.window_us})
            group.levels = top_level(group.max_window_us // key[0]) + 1
    lifetime = groups.pop(None, GroupPlan(hop_us=None))
    windowed = [groups[key] for key in sorted(k for k in groups if k is not None)]
    return ViewPlan(view, columns, {c: schema[c] for c in columns}, expressions, literals,
                    windowed, lifetime, features)


def _parameter(feature: FeatureSpec, path: tuple[str, ...]) -> int:
    field = aggregations.PARAMETERS.get(feature.agg)
    for other in aggregations.PARAMETER_KEYS:
        if other != field and getattr(feature, other) is not None:
            key = aggregations.PARAMETER_KEYS[other]
            raise GraphError((*path, key), f"'{key}' does not apply to '{feature.agg}'")
    if field is None:
        return 0
    key = aggregations.PARAMETER_KEYS[field]
    value = getattr(feature, field)
    if value is None:
        if field in aggregations.DEFAULTS:
            return aggregations.DEFAULTS[field]
        raise GraphError((*path, "agg"), f"'{feature.agg}' needs '{key}'")
    if field == "q":
        return len(_quantiles(value, (*path, key)))
    low, high = aggregations.PARAMETER_LIMITS.get(field, (1, None))
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high else "positive"
        raise GraphError((*path, key), f"'{key}' must be {bound}, got {value}")
    return int(value)


def _quantiles(values: tuple[float, ...], path: tuple[str, ...]) -> tuple[float, ...]:
    if not values or len(values) > aggregations.MAX_QUANTILES:
        raise GraphError(path, f"'q' needs 1 to {aggregations.MAX_QUANTILES} quantiles, "
                         f"got {len(values)}")
    for q in values:
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= q <= 1.0:
            raise GraphError(path, f"each quantile in 'q' must be a number from 0 to 1, "
                             f"got {q!r}")
    return tuple(float(q) for q in values)


def _result_type(agg: str, expr_type: ColumnType, path: tuple[str, ...]) -> ColumnType:
    if agg == "count":
        return ColumnType.INT
    if agg in ("first", "last", "last_n", "first_n", "top_k"):
        return expr_type
    if agg == "decayed_count":
        return ColumnType.FLOAT
    if agg == "approx_count_distinct":
        return ColumnType.INT
    if expr_type not in NUMERIC:
        raise GraphError(path, f"'{agg}' needs a numeric expression, got {expr_type.value}")
    if agg == "sum":
        return ColumnType.FLOAT if expr_type == ColumnType.FLOAT else ColumnType.INT
    if agg in ("min", "max"):
        return expr_type  # of booleans: all / any, still a boolean
    return ColumnType.FLOAT


def _refuse_lists(text: str, path: tuple[str, ...], lists: dict[tuple[str, str], str]) -> None:
    """A list feature is not a number: say so, rather than that it does not exist."""
    try:
        _, refs = referenced_names(parse_expression(text))
    except ExpressionError:
        return  # `_parse` reports it where it is
    for view, feature in sorted(refs):
        if (view, feature) in lists:
            raise GraphError(path, f"'{view}.{feature}' is a list ({lists[view, feature]}); "
                             "request view expressions take numbers")


def _plan_request_view(rv: RequestViewSpec, views: dict[str, ViewPlan]) -> RequestPlan:
    names: dict[str, ColumnType] = dict(rv.request)
    for view in views.values():
        for feature in view.features:
            if feature.result_type != ColumnType.STRING and not feature.is_list:
                names[f"{view.spec.name}.{feature.name}"] = feature.result_type
    expressions: list[Expr] = []
    dependencies: list[tuple[str, str]] = []
    feature_inputs: dict[str, RequestInputs] = {}
    terms: dict[Expr, str] = {}
    feature_types: dict[str, ColumnType] = {}
    lists = {(view.spec.name, feature.name): feature.agg for view in views.values()
             for feature in view.features if feature.is_list}
    for name, text in rv.features:
        path = ("request_views", rv.name, "features", name)
        _refuse_lists(text, path, lists)
        expr, expr_type = _parse(text, path, names)
        if expr_type not in (*NUMERIC, ColumnType.TIMESTAMP):
            raise GraphError(path, f"a request feature must be numeric, got {expr_type.value}")
        expressions.append(expr)
        feature_types[name] = expr_type
        fields_read, refs = referenced_names(expr)
        feature_inputs[name] = RequestInputs(fields_read, refs)
        dependencies.extend(r for r in sorted(refs) if r not in dependencies)
        for term in find_string_terms(expr, names):
            terms.setdefault(term, term_name(term))
    fields = [name for name, kind in rv.request if kind != ColumnType.STRING]
    inputs = fields + list(terms.values()) + [f"{view}.{feature}" for view, feature in dependencies]
    kernel_expressions = [replace_terms(expr, terms) for expr in expressions]
    string_terms = [(input_name, term) for term, input_name in terms.items()]
    return RequestPlan(rv, expressions, inputs, dependencies, feature_inputs,
                       kernel_expressions, string_terms, feature_types=feature_types)
