"""The project `featurestore init` writes: a registry over sample transactions, and the
README section that says how to use it. `apply` accepts it as written."""

from __future__ import annotations

REGISTRY = """\
project: {project}
store:
  offline: data/offline.duckdb   # DuckDB file, relative to this file
  online: local                  # "local" (an embedded file) or a redis:// URL
entities:
  user:
    keys: [user_id]
sources:
  transactions:
    path: data/transactions.parquet   # also CSV, a glob, `table:` or `query:`
    timestamp: event_ts
feature_views:
  user_txn:
    source: transactions
    entity: user
    description: Spending of a user, from card transactions.
    owner: risk-team@example.com
    tags: {{team: risk}}
    features:
      txn_count_1h:    {{agg: count, window: 1h, description: Transactions in the last hour.}}
      amount_sum_7d:   {{agg: sum, expr: amount, window: 7d}}
      amount_mean_30d: {{agg: mean, expr: amount, window: 30d}}
      amount_std_30d:  {{agg: std, expr: amount, window: 30d}}
      big_txn_7d:      {{agg: sum, expr: "amount > 500", window: 7d,
                        description: Transactions over 500 in the last 7 days.}}
      last_category:   {{agg: last, expr: merchant_category, window: 90d, tags: {{pii: "no"}}}}
request_views:
  txn_context:
    request:
      amount_now: float64
    features:
      amount_vs_mean: "amount_now / user_txn.amount_mean_30d"
services:
  fraud_v1: [user_txn:amount_sum_7d, user_txn:txn_count_1h, txn_context:amount_vs_mean]
"""

README_SECTION = """\
## Features

Features are declared in `registry.yaml` and computed by `featurestore`; the sample
transactions are in `data/transactions.parquet`. From this folder:

```sh
featurestore plan                            # what apply would change
featurestore apply                           # validate, compile, record
featurestore list features                   # what is defined
featurestore describe user_txn:amount_sum_7d # one feature: definition, window, lineage
featurestore materialize --end {end}   # offline tables and the online store
featurestore serve                           # HTTP on 127.0.0.1:8000, OpenAPI at /docs
```

From Python:

```python
from featurestore import FeatureStore

store = FeatureStore("registry.yaml")
store.apply()
print(store.get_online_features(service="fraud_v1", entities={{"user_id": [1, 2]}},
                                request={{"amount_now": [25.0, 980.0]}}, at="{end}"))
```
"""

GITIGNORE = """\
# Written by featurestore: the offline store and its caches.
data/offline.duckdb
data/offline.duckdb.wal
data/.featurestore*
"""
