"""`FeatureStore.fit`, pins, and transformed training sets and lookups: the online
transformed columns equal the offline ones bit for bit, on Redis and the local store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureStore, InputError
from featurestore.fits.applying import PIN_SECONDS
from tests import strategies as s
from tests.fits.helpers import (
    SERVICE,
    TRANSFORMED,
    as_numbers,
    assert_same_columns,
    lookup_spine,
    training_spine,
)
from tests.offline.training_project import REGISTRY, EventTuple, write_events
from tests.offline.training_project import at as utc_time
from tests.serving.conftest import DEMO_END, module_online_setting
from tests.strategies import DAY, MINUTE
from transforms.fitted_kernel import stable_hash

UNSEEN = 10_000_000
AT = DEMO_END + timedelta(minutes=10)


def transformed_lookup(store: FeatureStore, users: list[int], amounts: list[float | None],
                       **options: object) -> dict:
    return store.get_online_features(service=SERVICE, entities={"user_id": users},
                                     request={"amount_now": amounts}, at=AT, transformed=True,
                                     include_metadata=True, **options)


def test_fits_are_stored_listed_and_pinned(demo_store: FeatureStore) -> None:
    users, amounts = [1, 2, UNSEEN], [10.0, 300.0, None]
    with pytest.raises(InputError, match="`featurestore fit --service fraud_v1"):
        transformed_lookup(demo_store, users, amounts)
    with pytest.raises(InputError, match="featurestore fit"):
        demo_store.get_training_set(lookup_spine(users, amounts, AT), service=SERVICE,
                                    transformed=True)

    first_spine = training_spine(demo_store, seed=1)
    first = demo_store.fit(SERVICE, first_spine)
    assert first.new and first.pinned
    assert first.artifact.service == SERVICE and first.artifact.rows == first_spine.num_rows
    assert len(first.artifact.id) == 16
    assert set(first.artifact.statistics) == {*TRANSFORMED, "category_onehot"}
    assert first.artifact.id in first.render()
    assert [fit.id for fit in demo_store.list_fits()] == [first.artifact.id]
    assert [fit.id for fit in demo_store.list_fits(SERVICE)] == [first.artifact.id]
    assert demo_store.pinned_fits() == {SERVICE: first.artifact.id}

    # The statistics are those of the (untransformed) training set of the spine.
    frame = demo_store.get_training_set(first_spine, service=SERVICE, output="arrow").to_pandas()
    stats = first.artifact.statistics
    amounts_7d = frame["amount_sum_7d"].astype("float64")
    np.testing.assert_allclose([stats["amount_sum_7d_z"]["mean"], stats["amount_sum_7d_z"]["std"]],
                               [amounts_7d.mean(), amounts_7d.std(ddof=0)], rtol=1e-12)
    np.testing.assert_allclose(stats["amount_sum_7d_b"]["boundaries"],
                               amounts_7d.quantile([k / 10 for k in range(1, 10)]).to_numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(stats["amount_z_filled"]["fill"],
                               frame["amount_z"].astype("float64").median(), rtol=1e-12)
    counts = frame["last_category"].value_counts()
    ranked = sorted(counts.index, key=lambda value: (-counts[value], value))
    assert stats["category_idx"]["values"] == ranked
    assert stats["category_idx"]["counts"] == [int(counts[value]) for value in ranked]
    assert stats["category_onehot"]["values"] == ranked[:8]

    # The same definitions on the same data: the same artifact, not stored again.
    again = demo_store.fit(SERVICE, training_spine(demo_store, seed=1))
    assert (again.artifact.id, again.new, again.pinned) == (first.artifact.id, False, True)
    assert len(demo_store.list_fits()) == 1

    # Another spine: a new artifact, not served until pinned.
    second = demo_store.fit(SERVICE, training_spine(demo_store, rows=200, seed=2))
    assert second.artifact.id != first.artifact.id
    assert second.new and not second.pinned
    assert "pin-fit" in second.render()
    assert [fit.id for fit in demo_store.list_fits(SERVICE)] == [second.artifact.id,
                                                                 first.artifact.id]
    assert demo_store.pinned_fits() == {SERVICE: first.artifact.id}
    served = transformed_lookup(demo_store, users, amounts)
    assert served["metadata"]["fit"] == first.artifact.id

    # Training sets: the pinned fit by default, "latest", or an id (or a prefix of one).
    spine = lookup_spine(users, amounts, AT)

    def transformed(fit: str | None) -> dict[str, list]:
        table = demo_store.get_training_set(spine, service=SERVICE, transformed=True, fit=fit,
                                            output="arrow")
        return table.select(TRANSFORMED).to_pydict()

    pinned, latest = transformed(None), transformed("latest")
    assert pinned == transformed(first.artifact.id) == transformed(first.artifact.id[:8])
    assert latest == transformed(second.artifact.id)
    assert pinned["amount_sum_7d_z"] != latest["amount_sum_7d_z"]
    assert_same_columns(served["features"], pinned, TRANSFORMED)
    with pytest.raises(InputError, match="featurestore list fits"):
        transformed("0000000000000000")

    # Pinning switches what lookups serve.
    assert demo_store.pin_fit(SERVICE, second.artifact.id).id == second.artifact.id
    assert demo_store.pinned_fits() == {SERVICE: second.artifact.id}
    served = transformed_lookup(demo_store, users, amounts)
    assert served["metadata"]["fit"] == second.artifact.id
    assert_same_columns(served["features"], latest, TRANSFORMED)
    assert transformed(None) == latest
    # A lookup may name a fit too.
    older = transformed_lookup(demo_store, users, amounts, fit=first.artifact.id)
    assert older["metadata"]["fit"] == first.artifact.id
    assert_same_columns(older["features"], pinned, TRANSFORMED)
    # A refit of the first data keeps the pin where it is.
    assert demo_store.fit(SERVICE, first_spine).pinned is False
    assert demo_store.pinned_fits() == {SERVICE: second.artifact.id}


def test_transformed_lookups_equal_transformed_training_sets(demo_store: FeatureStore) -> None:
    fit = demo_store.fit(SERVICE, training_spine(demo_store)).artifact
    vocabulary = fit.statistics["category_idx"]["values"]
    one_hot = [f"category_onehot__{value}" for value in
               fit.statistics["category_onehot"]["values"]]
    assert "spaceflight" not in vocabulary
    users = [1, 2, 3, 7, 11, UNSEEN]
    amounts = [25.0, None, 3100.0, 0.0, 480.0, 5.0]

    def both() -> tuple[dict, dict]:
        online = transformed_lookup(demo_store, users, amounts)
        assert online["metadata"]["fit"] == fit.id
        offline = demo_store.get_training_set(lookup_spine(users, amounts, AT),
                                              service=SERVICE, transformed=True,
                                              output="arrow").to_pydict()
        features = online["features"]
        assert list(features)[-len(TRANSFORMED) - len(one_hot):] == [
            "amount_sum_7d_z", "amount_sum_7d_b", "category_idx", *one_hot, "amount_z_filled"]
        assert set(features) <= set(offline)
        assert_same_columns(features, offline, list(features))
        return features, offline

    features, offline = both()
    # An unseen user: null where the input is null, zeros for one-hot, imputed amount_z.
    last = len(users) - 1
    assert features["last_category"][last] is None
    assert features["category_idx"][last] is None
    assert [features[name][last] for name in one_hot] == [0] * len(one_hot)
    assert features["amount_z_filled"][last] == fit.statistics["amount_z_filled"]["fill"]
    assert features["amount_sum_7d_z"][last] == pytest.approx(
        -fit.statistics["amount_sum_7d_z"]["mean"] / fit.statistics["amount_sum_7d_z"]["scale"])

    # A category the fit never saw: the OOV bucket and no one-hot column, on both paths.
    pushed = demo_store.push("transactions", [{
        "user_id": 7, "event_ts": DEMO_END + timedelta(minutes=3), "amount": 40.0,
        "merchant_category": "spaceflight"}])
    assert pushed.online
    features, offline = both()
    row = users.index(7)
    for answer in (features, offline):
        assert answer["last_category"][row] == "spaceflight"
        assert answer["category_idx"][row] == len(vocabulary) + stable_hash("spaceflight") % 1
        assert [answer[name][row] for name in one_hot] == [0] * len(one_hot)


def test_transformed_lookups_need_a_service(demo_store: FeatureStore) -> None:
    with pytest.raises(InputError, match="unknown service 'fraud_v2'"):
        demo_store.fit("fraud_v2", training_spine(demo_store))
    with pytest.raises(InputError, match=r"'transformed' needs 'service'"):
        demo_store.get_online_features(features=["user_txn:txn_count_1h"],
                                       entities={"user_id": [1]}, at=AT, transformed=True)


def test_other_processes_pins_and_changed_definitions(demo_store: FeatureStore) -> None:
    first = demo_store.fit(SERVICE, training_spine(demo_store, seed=1)).artifact
    second = demo_store.fit(SERVICE, training_spine(demo_store, rows=150, seed=2)).artifact
    users, amounts = [1, 2], [5.0, 50.0]
    assert transformed_lookup(demo_store, users, amounts)["metadata"]["fit"] == first.id
    # A pin made elsewhere (another process, here another store object) is seen within
    # PIN_SECONDS.
    other = FeatureStore(demo_store.registry_path)
    try:
        other.pin_fit(SERVICE, "latest")
    finally:
        other.close()
    time.sleep(PIN_SECONDS + 0.2)
    assert transformed_lookup(demo_store, users, amounts)["metadata"]["fit"] == second.id

    # Changed transform definitions: the fit no longer applies, on either path.
    path = demo_store.registry_path
    path.write_text(path.read_text().replace("buckets: 10", "buckets: 5", 1))
    changed = FeatureStore(path)
    try:
        changed.apply()
        with pytest.raises(InputError, match="`featurestore fit --service fraud_v1") as caught:
            transformed_lookup(changed, users, amounts)
        assert getattr(caught.value, "code", None) == "fit_mismatch"
        with pytest.raises(InputError, match="was made for other definitions"):
            changed.get_training_set(lookup_spine(users, amounts, AT), service=SERVICE,
                                     transformed=True)
        refit = changed.fit(SERVICE, training_spine(changed, seed=1), pin=True).artifact
        assert refit.id != first.id
        assert transformed_lookup(changed, users, amounts)["metadata"]["fit"] == refit.id
    finally:
        changed.close()


# --- property: online transformed == offline transformed, on random data -------------

PROPERTY_REGISTRY = REGISTRY.replace("services:\n  svc: [", """services:
  svc_t:
    features: [user_stats:sum_1h, user_stats:n_1h, user_stats:last_cat_1h,
               user_stats:qty_max_1d, ctx:ratio]
    transforms:
      s_z:   {fn: zscore, of: sum_1h}
      s_b:   {fn: quantile_bucket, of: sum_1h, buckets: 4}
      s_r:   {fn: robust_scale, of: sum_1h}
      n_mm:  {fn: min_max, of: n_1h}
      cat_v: {fn: vocabulary, of: last_cat_1h, top_k: 2, oov_buckets: 3}
      cat_o: {fn: one_hot, of: last_cat_1h, top_k: 3}
      cat_h: {fn: hash_bucket, of: last_cat_1h, buckets: 5}
      cat_i: {fn: impute, of: last_cat_1h, strategy: constant, value: none}
      q_c:   {fn: clip_quantiles, of: qty_max_1d, quantiles: [0.1, 0.9]}
      q_i:   {fn: impute, of: qty_max_1d, strategy: constant, value: 0}
      r_l:   {fn: log1p, of: ratio}
      r_m:   {fn: impute, of: ratio, strategy: median}
  svc: [""", 1)
# Every fit has a value of each numeric input: an event before every spine time, and
# a spine row just after it.
SEED_EVENT: EventTuple = (0, s.BASE - 10 * MINUTE,
                          {"amount": 5.0, "qty": 3, "category": "a", "flag": False})
SEED_QUERY = (0, s.BASE - 5 * MINUTE, 1.0)
UNSEEN_USER = 99


@pytest.fixture(scope="module", params=["redis", "local"])
def property_project(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[tuple[Path, FeatureStore]]:
    setting = module_online_setting(request)
    folder = tmp_path_factory.mktemp(f"fits-{request.param}")
    (folder / "registry.yaml").write_text(PROPERTY_REGISTRY.replace(
        "entities:", f"store:\n  online: {setting}\nentities:", 1))
    write_events(folder, [SEED_EVENT])
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FEATURESTORE_ONLINE", "FEATURESTORE_OFFLINE", "FEATURESTORE_REGISTRY"):
            patch.delenv(name, raising=False)
        store = FeatureStore(folder)
    store.apply()
    yield folder, store
    store.close()


def spine_of(queries: list[tuple[int, int, float | None]]) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": np.array([user for user, _, _ in queries], np.int64),
        "event_ts": pd.to_datetime([utc_time(t) for _, t, _ in queries]).as_unit("us"),
        "amount_now": as_numbers([amount for *_, amount in queries])})


@given(events=s.events, end=s.times,
       fit_queries=st.lists(st.tuples(st.integers(0, 4), s.times, s.amounts), min_size=1,
                            max_size=20),
       lookups=st.lists(st.tuples(st.integers(0, 4), s.amounts), min_size=1, max_size=6),
       offset=st.integers(0, 2 * DAY))
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_online_transformed_equals_offline_transformed(
        property_project: tuple[Path, FeatureStore], events: list[EventTuple], end: int,
        fit_queries: list, lookups: list, offset: int) -> None:
    folder, store = property_project
    # Only events before the materialization's end: then a lookup at any later time and
    # a training set at that time read the same events.
    write_events(folder, [SEED_EVENT, *(event for event in events if event[1] < end)])
    store.materialize(end=utc_time(end), full=True)
    fitted = store.fit("svc_t", spine_of([SEED_QUERY, *fit_queries]), pin=True)
    at = end + offset
    users = [user for user, _ in lookups] + [UNSEEN_USER]
    amounts = [amount for _, amount in lookups] + [1.0]
    online = store.get_online_features(service="svc_t", entities={"user_id": users},
                                       request={"amount_now": amounts}, at=utc_time(at),
                                       transformed=True, include_metadata=True)
    assert online["metadata"]["fit"] == fitted.artifact.id
    queries = [(user, at, amount) for user, amount in zip(users, amounts, strict=True)]
    offline = store.get_training_set(spine_of(queries), service="svc_t", transformed=True,
                                     output="arrow").to_pydict()
    features = online["features"]
    assert set(features) <= set(offline)
    assert_same_columns(features, offline, list(features))


def test_a_service_without_transforms_has_nothing_to_fit(
        property_project: tuple[Path, FeatureStore]) -> None:
    _, store = property_project
    spine = spine_of([SEED_QUERY])
    with pytest.raises(InputError, match="service 'svc' declares no transforms"):
        store.fit("svc", spine)
    with pytest.raises(InputError, match="service 'svc' declares no transforms"):
        store.get_training_set(spine, service="svc", transformed=True)
