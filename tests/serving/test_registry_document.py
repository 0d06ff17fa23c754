"""The registry as GET /registry shows it: the definitions, without passwords."""

from __future__ import annotations

from featurestore.registry import parse_registry
from featurestore.serving.registry_document import registry_document

REGISTRY = """
project: p
store:
  offline: offline.duckdb
  online: redis://app:secret@cache:6379/0?password=secret
entities:
  user: {keys: [user_id]}
sources:
  events: {path: events.parquet, timestamp: ts}
feature_views:
  v:
    source: events
    entity: user
    features:
      n: {agg: count}
"""


def test_the_registry_document_shows_no_password() -> None:
    registry = parse_registry(REGISTRY)
    document = registry_document(registry)
    assert document["store"] == {"offline": "offline.duckdb",
                                 "online": "redis://app:***@cache:6379/0?password=***"}
    assert "secret" not in repr(document)
    # Everything else is the definitions as they are, and the registry keeps its URL.
    plain = registry.model_dump(mode="json")
    assert {**document, "store": plain["store"]} == plain
    assert registry.store.online == "redis://app:secret@cache:6379/0?password=secret"
