"""Every file in tests/registry/broken/ has one mistake; each gives exactly one message."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.errors import RegistryError
from featurestore.registry import load_registry

BROKEN = Path(__file__).parent / "broken"

EXPECTED = {
    "aggregation_typo.yaml": "17:30: feature_views.user_txn.features.amount_mean_30d.agg: "
    "unknown aggregation 'avg': expected one of count, sum, mean, min, max, std, "
    "first, last, decayed_sum, decayed_count, last_n, first_n, top_k, approx_count_distinct, "
    "approx_percentile (did you mean 'mean'?)",
    "bad_duration.yaml": "17:58: feature_views.user_txn.features.amount_mean_30d.window: "
    "invalid duration '30 days': expected a positive whole number and a unit (s, m, h or d), "
    "such as '90s', '5m', '1h' or '7d'",
    "default_hop_not_divisor.yaml": "16:57: feature_views.user_txn.features.amount_sum_7d.window: "
    "window 300h is not a multiple of the default hop 1d (set 'hop' to choose another)",
    "duplicate_feature.yaml": "19:7: feature_views.user_txn.features.amount_sum_7d: "
    "duplicate key 'amount_sum_7d' (first defined on line 16)",
    "entity_without_keys.yaml": "5:11: entities.user.keys: needs at least one key column",
    "expr_missing.yaml": "16:7: feature_views.user_txn.features.amount_sum_7d: "
    "aggregation 'sum' needs 'expr' (only 'count' and 'decayed_count' may leave it out)",
    "expression_syntax.yaml": "18:50: feature_views.user_txn.features.amount_std_30d.expr: "
    "invalid expression: invalid syntax",
    "hop_without_window.yaml": "16:49: feature_views.user_txn.features.amount_sum_7d.hop: "
    "'hop' needs a 'window' (a lifetime aggregation has no hop)",
    "invalid_name.yaml": "17:7: feature_views.user_txn.features.amount-mean-30d: "
    "'amount-mean-30d' is not a valid name: use letters, digits and underscores, "
    "not starting with a digit",
    "invalid_yaml.yaml": "13:4: invalid YAML: expected <block end>, but found "
    "'<block mapping start>'",
    "keys_not_a_list.yaml": "6:7: entities.user.keys: expected a list, got a mapping",
    "online_store_unknown.yaml": "4:11: store.online: expected 'local', a redis:// or a "
    "redis+cluster:// URL, got 'redis'",
    "request_type_unknown.yaml": "22:19: request_views.txn_context.request.amount_now: "
    "unknown type 'double': expected one of float64, float32, int64, int32, bool, timestamp, "
    "string (did you mean 'float64'?)",
    "request_unknown_feature.yaml": "24:61: request_views.txn_context.features.amount_z: "
    "unknown feature 'amount_std_3d' in feature view 'user_txn' (did you mean 'amount_std_30d'?)",
    "request_unknown_field.yaml": "24:19: request_views.txn_context.features.amount_z: "
    "unknown request field 'amount_nw' (did you mean 'amount_now'?)",
    "request_unknown_view.yaml": "24:32: request_views.txn_context.features.amount_z: "
    "unknown feature view 'user_tx' (did you mean 'user_txn'?)",
    "service_cycle.yaml": "26:3: services.fraud_v1: "
    "service 'fraud_v1' includes itself (fraud_v1 → fraud_v2 → fraud_v1)",
    "service_name_clash.yaml": "31:38: services.fraud_v1[1]: feature name 'amount_sum_7d' is "
    "used twice, by 'user_txn:amount_sum_7d' and 'card_txn:amount_sum_7d' "
    "(results are named by feature name)",
    "service_unknown_feature.yaml": "26:14: services.fraud_v1[0]: "
    "unknown feature 'amount_sum_7' in view 'user_txn' (did you mean 'amount_sum_7d'?)",
    "source_path_and_table.yaml": "7:3: sources.transactions: "
    "give exactly one of 'path', 'table' or 'query' (found 'path' and 'table')",
    "unknown_entity.yaml": "13:13: feature_views.user_txn.entity: "
    "unknown entity 'users' (did you mean 'user'?)",
    "unknown_key.yaml": "15:37: feature_views.user_txn.features.txn_count_1h.windw: "
    "unknown key 'windw' (did you mean 'window'?)",
    "unknown_section.yaml": "19:1: request_view: "
    "unknown key 'request_view' (did you mean 'request_views'?)",
    "unknown_source.yaml": "12:13: feature_views.user_txn.source: "
    "unknown source 'transaction' (did you mean 'transactions'?)",
    "window_not_multiple_of_hop.yaml": "16:57: feature_views.user_txn.features.amount_sum_7d."
    "window: window 90m is not a multiple of its hop 1h",
}


def test_every_broken_file_has_an_expected_message() -> None:
    files = sorted(path.name for path in BROKEN.glob("*.yaml"))
    assert files == sorted(EXPECTED)
    assert len(files) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_registry_gives_its_exact_message(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from the folder so that messages name the file as a user would type it.
    monkeypatch.chdir(BROKEN)
    with pytest.raises(RegistryError) as caught:
        load_registry(name)
    assert caught.value.problems == [f"{name}:{EXPECTED[name]}"]
    assert str(caught.value) == f"{name}:{EXPECTED[name]}"
