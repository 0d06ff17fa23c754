"""Plans: what changed between the applied registry and the file, and what is stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.registry import Registry, parse_registry
from featurestore.registry.plan import Action, Kind, compute_plan

DEMO_TEXT = (Path(__file__).resolve().parents[2] / "registry.yaml").read_text()


def edited(old: str, new: str) -> Registry:
    assert DEMO_TEXT.count(old) == 1
    return parse_registry(DEMO_TEXT.replace(old, new))


@pytest.fixture(scope="module")
def demo() -> Registry:
    return parse_registry(DEMO_TEXT)


def summary(plan_changes: tuple) -> list[tuple[str, str, str, bool]]:
    return [(c.kind.value, c.name, c.action.value, c.stale) for c in plan_changes]


def test_first_plan_adds_everything(demo: Registry) -> None:
    plan = compute_plan(None, demo)
    assert plan.applied_version is None
    assert not plan.changed and not plan.removed and not plan.stale_views
    kinds = [change.kind for change in plan.added]
    assert kinds.count(Kind.FEATURE) == len(demo.feature_views["user_txn"].features) == 15
    assert kinds.count(Kind.REQUEST_FEATURE) == 2
    assert [c.name for c in plan.of_kind(Kind.SERVICE)] == ["fraud_v1"]
    text = plan.render()
    assert text.splitlines()[0] == "Plan (nothing applied yet):"
    assert "      + txn_count_1h: count, window 1h, hop 5m" in text
    assert "      + last_category: last of merchant_category, window 90d, hop 1d" in text
    assert text.splitlines()[-1] == "22 to add, 0 to change, 0 to remove."


def test_unchanged_registry_gives_an_empty_plan(demo: Registry) -> None:
    plan = compute_plan(demo, demo, applied_version=3, text_changed=False)
    assert plan.is_empty
    assert plan.render() == "No changes: the registry matches applied version 3."
    comments_only = compute_plan(demo, demo, applied_version=3, text_changed=True)
    assert comments_only.render() == (
        "No changes: the registry matches applied version 3 (only the file's text changed)."
    )


def test_changed_window_makes_the_view_stale(demo: Registry) -> None:
    new = edited("{agg: sum,  expr: amount, window: 7d}", "{agg: sum,  expr: amount, window: 10d}")
    plan = compute_plan(demo, new, applied_version=1)
    assert summary(plan.changes) == [
        ("feature view", "user_txn", "change", True),
        ("feature", "user_txn:amount_sum_7d", "change", True),
    ]
    assert plan.changes[1].details == ("window 7d → 10d",)
    assert plan.stale_views == ("user_txn",)
    assert plan.render().splitlines() == [
        "Plan (compared with applied version 1):",
        "  ~ feature view user_txn  [stale]",
        "      ~ amount_sum_7d: window 7d → 10d  [stale]",
        "0 to add, 2 to change, 0 to remove.",
        "Materialized data made stale: user_txn (offline and online states); the next "
        "`featurestore materialize` rebuilds exactly these.",
    ]
    assert plan.offline_stale_views == ("user_txn",)


def test_list_and_decayed_parameters_show_and_make_the_view_stale() -> None:
    old_line = "{agg: last, expr: merchant_category, window: 90d}"
    before = edited(old_line, "{agg: last_n, expr: merchant_category, n: 3, window: 90d}")
    after = edited(old_line, "{agg: last_n, expr: merchant_category, n: 5, window: 90d}")
    added = compute_plan(None, before).render()
    assert "      + last_category: last_n(3) of merchant_category, window 90d, hop 1d" in added
    plan = compute_plan(before, after, applied_version=1)
    assert plan.changes[1].details == ("n 3 → 5",)
    assert plan.stale_views == ("user_txn",)
    decayed = edited(old_line, "{agg: decayed_count, half_life: 1h}")
    slower = edited(old_line, "{agg: decayed_count, half_life: 2h}")
    assert "+ last_category: decayed_count, half-life 1h, lifetime" in (
        compute_plan(None, decayed).render())
    assert compute_plan(decayed, slower).changes[1].details == ("half_life 1h → 2h",)


def test_sketch_parameters_show_and_make_the_view_stale() -> None:
    old_line = "{agg: last, expr: merchant_category, window: 90d}"
    default = edited(old_line, "{agg: approx_count_distinct, expr: merchant_category}")
    coarser = edited(old_line,
                     "{agg: approx_count_distinct, expr: merchant_category, precision: 10}")
    assert "+ last_category: approx_count_distinct of merchant_category, precision 10, " \
        "lifetime" in compute_plan(None, coarser).render()
    plan = compute_plan(default, coarser, applied_version=1)
    assert plan.changes[1].details == ("precision (none) → 10",)
    assert plan.stale_views == ("user_txn",)
    median = edited(old_line, "{agg: approx_percentile, expr: amount, q: [0.5], window: 90d}")
    more = edited(old_line, "{agg: approx_percentile, expr: amount, q: [0.5, 0.99], window: 90d}")
    assert "+ last_category: approx_percentile([0.5, 0.99]) of amount, window 90d, hop 1d" in (
        compute_plan(None, more).render())
    assert compute_plan(median, more).changes[1].details == ("q [0.5] → [0.5, 0.99]",)


def test_added_and_removed_features_make_the_view_stale(demo: Registry) -> None:
    added = edited(
        "      last_category:",
        "      amount_min_1d:    {agg: min, expr: amount, window: 1d}\n      last_category:",
    )
    plan = compute_plan(demo, added)
    assert summary(plan.changes) == [
        ("feature view", "user_txn", "change", True),
        ("feature", "user_txn:amount_min_1d", "add", True),
    ]
    removed = compute_plan(added, demo)
    # The states' layout changes with the features: materialize rebuilds the view.
    assert summary(removed.changes) == [
        ("feature view", "user_txn", "change", True),
        ("feature", "user_txn:amount_min_1d", "remove", True),
    ]
    assert removed.stale_views == removed.offline_stale_views == ("user_txn",)


def test_writing_the_default_hop_is_no_change(demo: Registry) -> None:
    explicit = edited("{agg: count, window: 1h}", "{agg: count, window: 1h, hop: 5m}")
    assert compute_plan(demo, explicit).is_empty
    different = edited("{agg: count, window: 1h}", "{agg: count, window: 1h, hop: 15m}")
    assert compute_plan(demo, different).changes[1].details == ("hop 5m → 15m",)


def test_view_hop_changes_show_per_feature(demo: Registry) -> None:
    new = edited("    entity: user\n", "    entity: user\n    hop: 1h\n")
    plan = compute_plan(demo, new)
    changed = {c.name: c.details for c in plan.of_kind(Kind.FEATURE)}
    assert changed == {
        "user_txn:txn_count_1h": ("hop 5m → 1h",),
        "user_txn:amount_mean_30d": ("hop 1d → 1h",),
        "user_txn:amount_std_30d": ("hop 1d → 1h",),
        "user_txn:last_category": ("hop 1d → 1h",),
        "user_txn:first_categories_30d": ("hop 1d → 1h",),
        "user_txn:top_categories_30d": ("hop 1d → 1h",),
        "user_txn:distinct_categories_30d": ("hop 1d → 1h",),
        "user_txn:amount_quantiles_30d": ("hop 1d → 1h",),
    }
    assert plan.of_kind(Kind.FEATURE_VIEW)[0].details == ("hop (none) → 1h",)


def test_source_change_makes_its_views_stale(demo: Registry) -> None:
    new = edited("path: data/transactions.parquet", "path: data/other/*.parquet")
    plan = compute_plan(demo, new)
    assert summary(plan.changes) == [
        ("source", "transactions", "change", False),
        ("feature view", "user_txn", "change", True),
    ]
    assert plan.changes[0].details == ("path data/transactions.parquet → data/other/*.parquet",)
    assert plan.stale_views == ("user_txn",)


def test_new_online_store_makes_online_states_stale(demo: Registry) -> None:
    new = edited("online: local", "online: redis://localhost:6379/0")
    plan = compute_plan(demo, new)
    assert summary(plan.changes) == [
        ("store", "store", "change", True),
        ("feature view", "user_txn", "change", True),
    ]
    assert plan.changes[0].details == ("online local → redis://localhost:6379/0",)
    # The offline states stay valid: only the new store needs them loaded.
    assert plan.stale_views == ("user_txn",) and plan.offline_stale_views == ()
    assert plan.render().splitlines()[-1] == (
        "Materialized data made stale: user_txn (online states: the new online store holds "
        "nothing yet); the next `featurestore materialize` rebuilds exactly these.")


def test_a_store_change_shows_no_password(demo: Registry) -> None:
    old = edited("online: local", "online: redis://app:first-secret@cache:6379/0")
    new = edited("online: local", "online: redis://app:second-secret@cache:6379/0")
    plan = compute_plan(old, new)
    assert plan.changes[0].details == (
        "online redis://app:***@cache:6379/0 → redis://app:***@cache:6379/0",)
    assert "secret" not in plan.render()


def test_request_views_and_services_are_never_stale(demo: Registry) -> None:
    new_text = DEMO_TEXT.replace(
        'log_amount_now: "log1p(amount_now)"', 'log_amount_now: "log(amount_now)"'
    ).replace("user_txn:txn_count_1h, txn_context:amount_z,", "txn_context:amount_z,"
    ).replace("services:\n", "services:\n  fraud_v2: [txn_context:amount_z]\n")
    new = parse_registry(new_text)
    plan = compute_plan(demo, new)
    assert summary(plan.changes) == [
        ("request view", "txn_context", "change", False),
        ("request feature", "txn_context:log_amount_now", "change", False),
        ("service", "fraud_v2", "add", False),
        ("service", "fraud_v1", "change", False),
    ]
    assert plan.changes[1].details == ("log1p(amount_now) → log(amount_now)",)
    assert plan.changes[3].details == (
        "features [user_txn:amount_sum_7d, user_txn:txn_count_1h, txn_context:amount_z, "
        "user_txn:last_category] → "
        "[user_txn:amount_sum_7d, txn_context:amount_z, user_txn:last_category]",
    )
    assert not plan.stale_views


def test_removing_a_view_lists_its_features(demo: Registry) -> None:
    bare = Registry(project="fraud_demo", store=demo.store)
    plan = compute_plan(demo, bare)
    assert all(change.action is Action.REMOVE for change in plan.changes)
    assert len(plan.removed) == 22
    assert plan.stale_views == ()


def test_description_tags_and_owner_show_in_the_plan_and_make_nothing_stale(
        demo: Registry) -> None:
    described = edited(
        "      amount_sum_7d:    {agg: sum,  expr: amount, window: 7d}",
        "      amount_sum_7d:    {agg: sum,  expr: amount, window: 7d, owner: risk,\n"
        "                         tags: {team: risk, tier: 1}, description: Spend.}")
    plan = compute_plan(demo, described, applied_version=1)
    assert summary(plan.changed) == [("feature view", "user_txn", "change", False),
                                     ("feature", "user_txn:amount_sum_7d", "change", False)]
    assert plan.stale_views == ()
    text = plan.render()
    assert "description (none) → Spend." in text
    assert "owner (none) → risk" in text
    assert "tags {} → {team: risk, tier: 1}" in text
    viewed = edited("    owner: risk-team@example.com\n", "    owner: fraud-team\n")
    view_plan = compute_plan(demo, viewed, applied_version=1)
    assert summary(view_plan.changed) == [("feature view", "user_txn", "change", False)]
    assert "owner risk-team@example.com → fraud-team" in view_plan.render()
