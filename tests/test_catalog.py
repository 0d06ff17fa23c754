"""The catalog: what `list` and `describe` show, through the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.catalog import matches, parse_tag_filters
from featurestore.errors import InputError
from tests.projects import DEMO_TEXT, write_demo_project

DESCRIBED = DEMO_TEXT.replace(
    "    tags: {team: risk}\n    owner: risk-team@example.com\n",
    "    owner: risk-team\n    tags: {team: risk, tier: 1}\n",
).replace(
    "      amount_sum_7d:    {agg: sum,  expr: amount, window: 7d}",
    "      amount_sum_7d:    {agg: sum,  expr: amount, window: 7d, owner: ana,\n"
    "                         description: Spend in a week., tags: {team: growth, pii: 'no'}}",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    project = write_demo_project(tmp_path_factory.mktemp("catalog"), DESCRIBED, events=500,
                                 users=10)
    return FeatureStore(project)


def test_lists_every_kind_in_file_order(store: FeatureStore) -> None:
    assert [e.name for e in store.list("entities")] == ["user"]
    assert [e.name for e in store.list("sources")] == ["transactions"]
    assert [(e.name, e.kind) for e in store.list("views")] == [
        ("user_txn", "feature view"), ("txn_context", "request view")]
    features = store.list("features")
    assert [e.name for e in features][:3] == [
        "user_txn:txn_count_1h", "user_txn:amount_sum_7d", "user_txn:amount_mean_30d"]
    assert features[-1].name == "txn_context:log_amount_now"
    assert [e.name for e in store.list("services")] == ["fraud_v1"]
    with pytest.raises(InputError, match=r"cannot list 'service'.*did you mean 'services'"):
        store.list("service")


def test_features_inherit_the_view_owner_and_tags_and_keep_their_own(
        store: FeatureStore) -> None:
    by_name = {e.name: e for e in store.list("features")}
    count = by_name["user_txn:txn_count_1h"]
    assert (count.owner, dict(count.tags), count.description) == (
        "risk-team", {"team": "risk", "tier": "1"}, None)
    assert count.summary == "int, count, window 1h, hop 5m"
    spend = by_name["user_txn:amount_sum_7d"]
    assert (spend.owner, dict(spend.tags), spend.description) == (
        "ana", {"team": "growth", "tier": "1", "pii": "no"}, "Spend in a week.")


def test_tag_filters(store: FeatureStore) -> None:
    risk = [e.name for e in store.list("features", {"team": "risk"})]
    assert "user_txn:amount_sum_7d" not in risk
    assert len(risk) == 14
    assert [e.name for e in store.list("features", parse_tag_filters(["pii"]))] == [
        "user_txn:amount_sum_7d"]
    assert store.list("features", {"team": "nobody"}) == []
    assert [e.name for e in store.list("views", {"tier": "1"})] == ["user_txn"]
    assert matches({"a": "1"}, {}) and not matches({}, {"a": None})
    with pytest.raises(InputError, match="expected NAME=VALUE"):
        parse_tag_filters(["=risk"])


def test_describe_a_feature_spells_out_its_window_lineage_and_materialization(
        store: FeatureStore) -> None:
    described = store.describe("user_txn:amount_mean_30d")
    fields = dict(described.fields)
    assert described.kind == "feature"
    assert fields["type"] == "float"
    assert fields["window"] == "window 30d, hop 1d: events in [floor(t, 1d) - 30d, t)"
    assert fields["last materialization"] == "never"
    assert described.lineage == (
        "transactions -> user_txn -> user_txn:amount_mean_30d",
        "user_txn:amount_mean_30d -> txn_context:amount_z",
        "user_txn:amount_mean_30d -> service fraud_v1",
    )
    # A bare name found in one view describes the same feature.
    assert store.describe("amount_mean_30d") == described
    text = store.describe("user_txn:amount_sum_7d").render()
    assert "  description           Spend in a week.\n" in text
    assert "  tags                  team=growth, tier=1, pii=no\n" in text


def test_describe_views_services_and_mistakes(store: FeatureStore) -> None:
    view = store.describe("user_txn")
    assert dict(view.fields)["owner"] == "risk-team"
    assert len(view.lineage) == 15
    request = store.describe("txn_context:amount_z")
    assert dict(request.fields)["reads features"] == (
        "user_txn:amount_std_30d, user_txn:amount_mean_30d")
    service = store.describe("fraud_v1")
    assert service.lineage[:4] == ("user_txn:amount_sum_7d: float", "user_txn:txn_count_1h: int",
                                   "txn_context:amount_z: float", "user_txn:last_category: string")
    assert service.lineage[4] == ("amount_sum_7d -> amount_sum_7d_z (zscore, fitted by "
                                  "`featurestore fit`)")
    assert dict(service.fields)["pinned fit"] == "none"
    assert store.describe("user").kind == "entity"
    assert store.describe("transactions").kind == "source"
    with pytest.raises(InputError, match=r"nothing is named 'amount_summ'.*'amount_sum_7d'"):
        store.describe("amount_summ")
    with pytest.raises(InputError, match="view 'user_txn' has no feature 'nope'"):
        store.describe("user_txn:nope")


def test_describe_shows_the_last_materialization_and_when_it_is_stale(
        tmp_path: Path) -> None:
    project = write_demo_project(tmp_path, events=500, users=10)
    store = FeatureStore(project)
    store.apply()
    store.materialize(end="2024-02-01")
    assert dict(store.describe("user_txn").fields)["last materialization"].startswith(
        "events before 2024-02-01T00:00:00+00:00, at ")
    (project / "registry.yaml").write_text(DEMO_TEXT.replace("window: 7d}", "window: 14d}"))
    edited = FeatureStore(project)
    assert dict(edited.describe("user_txn").fields)["last materialization"].endswith(
        "(stale: the definition changed since)")


def test_types_are_unknown_when_the_source_cannot_be_read(tmp_path: Path) -> None:
    project = write_demo_project(tmp_path, events=100, users=5)
    (project / "data" / "transactions.parquet").unlink()
    store = FeatureStore(project)
    assert store.list("features")[0].summary == "type unknown, count, window 1h, hop 5m"
    fields = dict(store.describe("user_txn").fields)
    assert fields["types"].startswith("unknown (")
    assert "transactions.parquet" in fields["types"]
