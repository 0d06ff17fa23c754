"""Code generation snapshot, the on-disk kernel cache, and request-view kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.transforms.demo_spec import DEMO_SPEC
from tests.transforms.reference_expressions import evaluate as reference_evaluate
from transforms import GraphError, compile_graph, graph_source
from transforms.codegen import request_module
from transforms.expressions import parse_expression
from transforms.graph import RequestInputs
from transforms.spec import ColumnType, FeatureSpec, GraphSpec, RequestViewSpec, ViewSpec

GOLDEN = Path(__file__).parent / "golden" / "demo_kernels.py.txt"
ROOT = Path(__file__).resolve().parents[2]


def test_generated_source_matches_golden_file() -> None:
    """A codegen change shows up as a reviewable diff of this file.

    Regenerate with FEATURESTORE_UPDATE_GOLDEN=1 after checking the diff is intended.
    """
    _, source, _ = graph_source(DEMO_SPEC)
    if os.environ.get("FEATURESTORE_UPDATE_GOLDEN"):
        GOLDEN.write_text(source)
    assert source == GOLDEN.read_text()


def test_hash_is_stable_and_changes_with_definitions() -> None:
    _, _, first = graph_source(DEMO_SPEC)
    _, _, again = graph_source(DEMO_SPEC)
    view = DEMO_SPEC.views[0]
    changed = GraphSpec(
        views=(ViewSpec(view.name, view.source, view.keys, view.timestamp,
                        view.features[:-1]),),
        request_views=DEMO_SPEC.request_views, schemas=DEMO_SPEC.schemas)
    _, _, other = graph_source(changed)
    assert first == again
    assert other != first


CHILD = """
import json, sys
from tests.transforms.demo_spec import DEMO_SPEC
from transforms import compile_graph, engine
graph = compile_graph(DEMO_SPEC, sys.argv[1])
graph.warm()
kernels = [view._rows for view in graph.views.values()]
kernels += [view._eval for view in graph.request_views.values()]
kernels += [engine.training, engine.states, engine.values]
print(json.dumps([(sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))
                  for k in kernels]))
"""


def run_child(cache: Path) -> list[tuple[int, int]]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", CHILD, str(cache)], cwd=ROOT, check=True,
                            capture_output=True, text=True, env=environment)
    return [tuple(pair) for pair in json.loads(result.stdout.strip().splitlines()[-1])]


@pytest.mark.slow
def test_second_process_loads_kernels_from_disk_cache(tmp_path: Path) -> None:
    first = run_child(tmp_path)
    second = run_child(tmp_path)
    # The view's and the request view's modules are new to this cache: compiled once.
    assert first[:2] == [(0, 1), (0, 1)]
    # Everything, the shared engine included, comes from the disk cache the second time.
    assert second == [(1, 0)] * 5
    assert len(list(tmp_path.glob("fs_view_user_txn_*.py"))) == 1
    assert len(list(tmp_path.glob("fs_request_txn_context_*.py"))) == 1


def test_editing_one_view_compiles_only_that_view(tmp_path: Path) -> None:
    view = DEMO_SPEC.views[0]
    other = replace(view, name="other_txn")
    spec = replace(DEMO_SPEC, views=(view, other))
    compile_graph(spec, tmp_path).warm()

    def warm_with(features: tuple[FeatureSpec, ...]) -> list[str]:
        lines: list[str] = []
        graph = compile_graph(replace(spec, views=(view, replace(other, features=features))),
                              tmp_path)
        graph.compile_missing(progress=lines.append)
        # (The shared kernels say they compile too while an edit to them is being tested.)
        return [line for line in lines if "shared" not in line]

    # A new expression: that view's module, and only it, compiles.
    new_expression = replace(other.features[1], expr="amount * 2")
    assert warm_with((other.features[0], new_expression, *other.features[2:])) == [
        "compiling other_txn (2/3)"]
    assert len(list(tmp_path.glob("fs_view_other_txn_*.py"))) == 2
    # A new window, aggregation or name over the same expressions is layout: no compile.
    relaid = replace(other.features[1], name="amount_sum_1d", agg="max",
                     window_us=86_400_000_000)
    assert warm_with((other.features[0], relaid, *other.features[2:])) == []


def test_graph_hash_follows_layout_edits() -> None:
    view = DEMO_SPEC.views[0]
    longer = replace(view.features[1], window_us=2 * view.features[1].window_us)
    edited = replace(DEMO_SPEC, views=(replace(view, features=(
        view.features[0], longer, *view.features[2:])),))
    assert graph_source(edited)[2] != graph_source(DEMO_SPEC)[2]


def test_request_view_evaluates_with_view_features(tmp_path: Path) -> None:
    graph = compile_graph(DEMO_SPEC, tmp_path)
    request = graph.request_views["txn_context"]
    assert request.dependencies == (("user_txn", "amount_mean_30d"),
                                    ("user_txn", "amount_std_30d"))
    mean = np.array([10.0, np.nan, 5.0])
    std = np.array([2.0, 1.0, 0.0])
    out = request.evaluate({"amount_now": np.array([14.0, 3.0, np.nan])},
                           {("user_txn", "amount_mean_30d"): mean,
                            ("user_txn", "amount_std_30d"): std})
    np.testing.assert_allclose(out[0], [4.0 / (2.0 + 1e-6), np.nan, np.nan])
    np.testing.assert_allclose(out[1], np.log1p([14.0, 3.0, np.nan]))


def test_request_features_say_what_they_read_and_evaluate_from_just_that(
        tmp_path: Path) -> None:
    request = compile_graph(DEMO_SPEC, tmp_path).request_views["txn_context"]
    mean, std = ("user_txn", "amount_mean_30d"), ("user_txn", "amount_std_30d")
    assert request.inputs_of(["log_amount_now"]) == RequestInputs(frozenset({"amount_now"}))
    assert request.inputs_of(["amount_z"]) == RequestInputs(frozenset({"amount_now"}),
                                                            frozenset({mean, std}))
    assert request.inputs_of(["amount_z", "log_amount_now"]) == request.inputs_of(["amount_z"])
    assert request.inputs_of([]) == RequestInputs()
    # Inputs not given are null: features that read them are null, the others exact.
    out = request.evaluate_given({"amount_now": np.array([0.0, np.e - 1])}, {}, rows=2)
    np.testing.assert_allclose(out[1], [0.0, 1.0])
    assert np.isnan(out[0]).all()
    # With no input at all, the row count still comes through.
    assert request.evaluate_given({}, {}, rows=3).shape == (2, 3)


def spec_with(feature: FeatureSpec, request: tuple = ()) -> GraphSpec:
    schema = (("x", ColumnType.FLOAT), ("s", ColumnType.STRING), ("ts", ColumnType.TIMESTAMP))
    view = ViewSpec("v", "src", ("k",), "ts", (feature,))
    return GraphSpec(views=(view,), request_views=request, schemas=(("src", schema),))


@pytest.mark.parametrize(("feature", "message"), [
    (FeatureSpec("f", "sum", "s", None, None),
     "feature_views.v.features.f.agg: 'sum' needs a numeric expression, got string"),
    (FeatureSpec("f", "mean", None, None, None),
     "feature_views.v.features.f.agg: 'mean' needs an 'expr'"),
    (FeatureSpec("f", "last_n", "x", None, None),
     "feature_views.v.features.f.agg: 'last_n' needs 'n'"),
    (FeatureSpec("f", "sum", "x", None, None, n=3),
     "feature_views.v.features.f.n: 'n' does not apply to 'sum'"),
    (FeatureSpec("f", "top_k", "s", None, None, k=101),
     "feature_views.v.features.f.k: 'k' must be between 1 and 100, got 101"),
    (FeatureSpec("f", "approx_count_distinct", "s", None, None, precision=7),
     "feature_views.v.features.f.precision: 'precision' must be between 8 and 16, got 7"),
    (FeatureSpec("f", "approx_percentile", "x", None, None, q=(0.5, 1.5)),
     "feature_views.v.features.f.q: each quantile in 'q' must be a number from 0 to 1, "
     "got 1.5"),
    (FeatureSpec("f", "approx_percentile", "s", None, None, q=(0.5,)),
     "feature_views.v.features.f.agg: 'approx_percentile' needs a numeric expression, "
     "got string"),
])
def test_definition_errors_name_the_feature(feature: FeatureSpec, message: str) -> None:
    with pytest.raises(GraphError) as error:
        graph_source(spec_with(feature))
    assert str(error.value) == message


def test_expression_errors_carry_path_and_column() -> None:
    with pytest.raises(GraphError) as error:
        graph_source(spec_with(FeatureSpec("f", "sum", "x + amount", None, None)))
    assert error.value.path == ("feature_views", "v", "features", "f", "expr")
    assert error.value.column == 4


def test_request_view_refuses_list_features() -> None:
    request = RequestViewSpec("r", (), (("bad", "v.f + 1"),))
    with pytest.raises(GraphError) as error:
        graph_source(spec_with(FeatureSpec("f", "last_n", "x", None, None, n=2), (request,)))
    assert str(error.value) == ("request_views.r.features.bad: 'v.f' is a list (last_n); "
                                "request view expressions take numbers")


def test_request_view_rejects_string_results() -> None:
    request = RequestViewSpec("r", (("y", ColumnType.FLOAT),), (("bad", "v.f"),))
    with pytest.raises(GraphError) as error:
        graph_source(spec_with(FeatureSpec("f", "last", "s", None, None), (request,)))
    assert error.value.path == ("request_views", "r", "features", "bad")


STRING_FEATURES = (
    ("is_fr", "country == 'FR'"),
    ("not_fr", "country != 'FR'"),
    ("eu", "lower(country) in ['fr', 'de', 'ça']"),
    ("not_eu", "country not in ['FR', 'DE']"),
    ("code_length", "length(country) + amount"),
    ("gold", "where(startswith(lower(tier), 'gold'), amount * 2, amount)"),
    ("missing_tier", "isnull(tier) + 0"),
    ("mixed", "coalesce(length(tier), -1) * (v.f + 1)"),
)


def _string_request_view(tmp_path: Path):
    request = RequestViewSpec(
        "r", (("country", ColumnType.STRING), ("amount", ColumnType.FLOAT),
              ("tier", ColumnType.STRING)), STRING_FEATURES)
    spec = spec_with(FeatureSpec("f", "sum", "x", None, None), (request,))
    return compile_graph(spec, tmp_path).request_views["r"]


def test_string_request_fields_are_evaluated_outside_the_kernel(tmp_path: Path) -> None:
    compiled = _string_request_view(tmp_path)
    # The kernel reads the numeric field, then one input per string term, then features.
    assert compiled.plan.inputs[0] == "amount"
    assert "(country == 'FR')" in compiled.plan.inputs
    assert compiled.plan.inputs[-1] == "v.f"
    assert "country" not in compiled.plan.inputs and "tier" not in compiled.plan.inputs
    assert compiled.inputs_of(["gold"]) == RequestInputs(frozenset({"tier", "amount"}))
    countries = ["FR", None, "de", "Ça", "", "US"]
    tiers = ["Gold+", "gold", None, "silver", "GOLDEN", ""]
    amounts = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    features = np.array([0.0, 1.0, 2.0, np.nan, 4.0, 5.0])
    out = compiled.evaluate({"country": countries, "amount": amounts, "tier": tiers},
                            {("v", "f"): features})
    for k, (_, text) in enumerate(STRING_FEATURES):
        expr = parse_expression(text)
        for row in range(len(countries)):
            values = {"country": countries[row], "amount": amounts[row], "tier": tiers[row],
                      "v.f": features[row]}
            expected = reference_evaluate(expr, values)
            got = None if np.isnan(out[k, row]) else float(out[k, row])
            assert got == expected, (text, row, got, expected)
    # Object arrays and Arrow arrays give the same values; a missing field is null.
    same = compiled.evaluate({"country": np.array(countries, dtype=object), "amount": amounts,
                              "tier": pa.array(tiers)}, {("v", "f"): features})
    np.testing.assert_array_equal(same, out)
    given = compiled.evaluate_given({"amount": amounts}, {}, rows=6)
    assert np.isnan(given[0]).all() and (given[6] == 1.0).all()


def test_string_request_fields_refuse_other_values(tmp_path: Path) -> None:
    compiled = _string_request_view(tmp_path)
    with pytest.raises(ValueError, match=r"string field 'country' row 1: expected a string "
                                         r"or null, got 3 \(int\)"):
        compiled.evaluate({"country": ["FR", 3], "amount": np.zeros(2), "tier": [None, None]},
                          {("v", "f"): np.zeros(2)})


def test_string_terms_in_the_generated_source(tmp_path: Path) -> None:
    source = request_module(_string_request_view(tmp_path).plan, "support")
    assert "#   c1  (country == 'FR')" in source
    assert "'FR'" not in source.split("def evaluate", 1)[1]  # no text in the kernel


def test_string_functions_are_refused_in_feature_views() -> None:
    with pytest.raises(GraphError) as error:
        graph_source(spec_with(FeatureSpec("f", "sum", "length(s)", None, None)))
    assert error.value.path == ("feature_views", "v", "features", "f", "expr")
    assert "length() applies to string request fields" in str(error.value)
    # Membership over a source's string column compiles to code comparisons.
    graph_source(spec_with(FeatureSpec("f", "sum", "s in ['a', 'b']", None, None)))
