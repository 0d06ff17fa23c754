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

from dataclasses import dataclass, field

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
from transforms.spec import ColumnType, GraphSpec, RequestViewSpec, ViewSpec
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
    result_type: ColumnType


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
    groups: list[GroupPlan]  # windowed groups, by ascending hop
    lifetime: GroupPlan
    features: list[FeaturePlan]

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
    groups: dict[int | None, GroupPlan] = {}
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
        elif feature.agg != "count":
            raise GraphError((*path, "agg"), f"'{feature.agg}' needs an 'expr'")
        result = _result_type(feature.agg, expr_type, (*path, "agg"))
        # A windowed `last` is the latest event before t if that event is inside the
        # window: one running (time, value) pair answers it exactly, with no tiles.
        tiled = feature.window_us is not None and feature.agg != "last"
        hop = feature.hop_us if tiled else None
        group = groups.setdefault(hop, GroupPlan(hop_us=hop))
        plan = FeaturePlan(feature.name, index, feature.agg, expr_index, feature.window_us,
                           feature.hop_us, group.width, result)
        group.width += aggregations.width(feature.agg)
        group.features.append(plan)
        features.append(plan)
    for hop, group in groups.items():
        if hop is not None:
            group.windows = sorted({f.window_us for f in group.features if f.window_us})
            group.levels = top_level(group.max_window_us // hop) + 1
    lifetime = groups.pop(None, GroupPlan(hop_us=None))
    windowed = [groups[hop] for hop in sorted(h for h in groups if h is not None)]
    return ViewPlan(view, columns, {c: schema[c] for c in columns}, expressions, literals,
                    windowed, lifetime, features)


def _result_type(agg: str, expr_type: ColumnType, path: tuple[str, ...]) -> ColumnType:
    if agg == "count":
        return ColumnType.INT
    if agg in ("first", "last"):
        return expr_type
    if expr_type not in NUMERIC:
        raise GraphError(path, f"'{agg}' needs a numeric expression, got {expr_type.value}")
    if agg == "sum":
        return ColumnType.FLOAT if expr_type == ColumnType.FLOAT else ColumnType.INT
    if agg in ("min", "max"):
        return expr_type  # of booleans: all / any, still a boolean
    return ColumnType.FLOAT


def _plan_request_view(rv: RequestViewSpec, views: dict[str, ViewPlan]) -> RequestPlan:
    names: dict[str, ColumnType] = dict(rv.request)
    for view in views.values():
        for feature in view.features:
            if feature.result_type != ColumnType.STRING:
                names[f"{view.spec.name}.{feature.name}"] = feature.result_type
    expressions: list[Expr] = []
    dependencies: list[tuple[str, str]] = []
    feature_inputs: dict[str, RequestInputs] = {}
    terms: dict[Expr, str] = {}
    feature_types: dict[str, ColumnType] = {}
    for name, text in rv.features:
        path = ("request_views", rv.name, "features", name)
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
