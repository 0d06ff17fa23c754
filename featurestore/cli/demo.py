"""The demo command: the whole path on sample data, step by step."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore.cli.group import indent, main, registry_option, shown, to_stderr
from featurestore.cli.sample import SAMPLE_SOURCE, generate_sample, sample_path, size_options
from featurestore.errors import FeatureStoreError
from featurestore.store import FeatureStore

DEMO_SERVICE = "fraud_v1"
DEMO_USERS = (1, 2, 3)
DEMO_PUSH_FEATURES = ("txn_count_1h", "amount_sum_7d", "big_txn_7d", "last_category")


@main.command()
@registry_option
@size_options
def demo(registry: Path, events: int, users: int, days: int, seed: int) -> None:
    """Generate the sample data if it is missing, plan, apply, build a training set, then
    materialize, look up online, push and verify."""
    store = FeatureStore(registry)
    target = sample_path(store)
    total = 9
    click.echo(f"[1/{total}] Sample data: {shown(target)}")
    if target.exists():
        click.echo("      already there; delete it to generate it again.")
    else:
        generate_sample(target, events, users, days, seed)
    click.echo(f"[2/{total}] Plan for {shown(store.registry_path)}:")
    click.echo(indent(store.plan().render()))
    click.echo(f"[3/{total}] Apply to {shown(store.offline_path)}:")
    click.echo(indent(store.apply(progress=to_stderr).summary()))
    _demo_training_set(store, 4, total)
    _demo_online(store, 5, total)


DEMO_SPINE_ROWS = 20_000
DEMO_TRAINING_FEATURES = (DEMO_SERVICE, "user_txn:last_category", "user_txn:amount_max_1d")


def _demo_training_set(store: FeatureStore, step: int, total: int) -> None:
    """Build a training set for a spine sampled from the events, and show its first rows."""
    from featurestore.sample_spine import sample_spine

    spine = sample_spine(sample_path(store), DEMO_SPINE_ROWS, seed=0)
    click.echo(f"[{step}/{total}] Training set: {spine.num_rows:,} spine rows (users at random "
               "times, with amount_now and a label), features "
               f"{', '.join(DEMO_TRAINING_FEATURES)}:")
    started = time.perf_counter()
    frame = store.get_training_set(spine, features=list(DEMO_TRAINING_FEATURES))
    elapsed = time.perf_counter() - started
    head = frame.head(5).to_dict(orient="list")
    click.echo(indent(_table({name: [_plain(v) for v in cells] for name, cells in head.items()})))
    click.echo(f"      {len(frame):,} rows x {len(frame.columns)} columns in {elapsed:.2f}s")


def _plain(value: object) -> object:
    """A cell as the demo prints it: times as ISO text, missing values as null."""
    if isinstance(value, datetime):
        return value.isoformat()
    return "null" if value is None or value != value else value


def _demo_online(store: FeatureStore, step: int, total: int) -> None:
    """The online half of the demo: materialize, look up, push, look up again, verify.

    Everything happens at the end of the sample data's timeline, so the windows hold
    events; the pushed transaction comes one minute after it, the lookups two.
    """
    end = _sample_end(store)
    click.echo(f"[{step}/{total}] Materialize events before {end.isoformat()}:")
    click.echo(indent(store.materialize(end=end).render()))
    users = list(DEMO_USERS)
    pushed_at = end + timedelta(minutes=1)
    # Every lookup is after the pushed event's time: a rerun of the demo finds the event
    # an earlier run pushed in the online state, and a lookup before it is refused.
    lookup_at = pushed_at + timedelta(minutes=1)
    click.echo(f"[{step + 1}/{total}] Online lookups (SDK), service {DEMO_SERVICE}, at "
               f"{lookup_at.isoformat()}:")
    answer = store.get_online_features(service=DEMO_SERVICE, entities={"user_id": users},
                                       request={"amount_now": [25.0, 480.0, 3100.0]},
                                       at=lookup_at)
    click.echo(indent(_table(answer)))
    event = {"user_id": users[0], "event_ts": pushed_at, "amount": 950.0,
             "merchant_category": "electronics"}
    click.echo(f"[{step + 2}/{total}] Push a {event['amount']:.2f} electronics transaction "
               f"for user {users[0]}, then look up again:")
    features = [f"user_txn:{name}" for name in DEMO_PUSH_FEATURES]
    before = store.get_online_features(features=features, entities={"user_id": users[:1]},
                                       at=lookup_at)
    result = store.push(SAMPLE_SOURCE, [event])
    after = store.get_online_features(features=features, entities={"user_id": users[:1]},
                                      at=lookup_at)
    where = "online store updated" if result.online else "stored for the next materialization"
    click.echo(f"      pushed {result.rows} row ({where}); at {lookup_at.isoformat()}:")
    for name in DEMO_PUSH_FEATURES:
        old, new = _rounded(before[name][0]), _rounded(after[name][0])
        click.echo(f"      {name:<16} {old!s:>12} -> {new!s}")
    click.echo(f"[{step + 3}/{total}] Verify online == offline:")
    report = store.verify()
    click.echo(indent(report.render()))
    if not report.ok:
        raise FeatureStoreError("online and offline values differ (see above)")
    _demo_transforms(store, step + 4, total, lookup_at)


def _demo_transforms(store: FeatureStore, step: int, total: int, at: datetime) -> None:
    """Fit the service's transforms on a training set, then one transformed lookup, checked
    against the transformed training set of the same entity and time."""
    from featurestore.sample_spine import sample_spine

    spine = sample_spine(sample_path(store), DEMO_SPINE_ROWS, seed=1)
    click.echo(f"[{step}/{total}] Fit the transforms of {DEMO_SERVICE} on {spine.num_rows:,} "
               "training rows, then one transformed online lookup:")
    result = store.fit(DEMO_SERVICE, spine, pin=True)
    click.echo(indent(result.render()))
    # A user the demo does not push for: each run of the demo pushes for the first one.
    users, amounts = list(DEMO_USERS[1:2]), [480.0]
    online = store.get_online_features(service=DEMO_SERVICE, entities={"user_id": users},
                                       request={"amount_now": amounts}, at=at,
                                       transformed=True, include_metadata=True)
    names = list(store.registry.services[DEMO_SERVICE].transforms)
    columns = {name: values for name, values in online["features"].items()
               if any(name == n or name.startswith(f"{n}__") for n in names)}
    click.echo(indent(f"user {users[0]} at {at.isoformat()}, fit {online['metadata']['fit']}:"))
    hot = [name for name, values in columns.items() if "__" in name and values[0] == 1]
    for name, values in columns.items():
        if "__" not in name:
            click.echo(indent(f"  {name:<18} {_rounded(values[0])}"))
    click.echo(indent(f"  one-hot            {', '.join(hot) or 'no column set (unseen value)'}"))
    spine_row = pa.table({"user_id": users, "event_ts": pa.array([at], pa.timestamp("us", "UTC")),
                          "amount_now": amounts})
    offline = store.get_training_set(spine_row, service=DEMO_SERVICE, transformed=True,
                                     output="arrow").to_pydict()
    same = all(offline[name] == values for name, values in columns.items())
    click.echo(indent(f"  the transformed training set of the same user and time: "
                      f"{'equal, value for value' if same else 'DIFFERENT'}"))
    if not same:
        raise FeatureStoreError("online and offline transformed values differ (see above)")


def _sample_end(store: FeatureStore) -> datetime:
    """The end of the sample data: the hour after its last event (UTC)."""
    table = pq.read_table(sample_path(store), columns=["event_ts"])
    last = pc.max(table.column("event_ts")).as_py()
    if last is None:
        raise FeatureStoreError("the sample data holds no events")
    last = last if last.tzinfo is not None else last.replace(tzinfo=UTC)
    return last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _table(columns: dict[str, list]) -> str:
    """Columns as aligned text rows, floats to 2 decimals."""
    def shown(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    names = list(columns)
    rows = [[shown(v) for v in values] for values in zip(*columns.values(), strict=True)]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(names)]
    lines = ["  ".join(name.rjust(width) for name, width in zip(names, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _rounded(value: object) -> object:
    """A value as a person reads it: floats to two decimals, the rest as is."""
    return round(value, 2) if isinstance(value, float) else value
