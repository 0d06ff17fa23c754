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
                                 "online": "redis://app:***@cache:6379/0?password=***",
                                 "engine": "local", "work_dir": None}
    assert "secret" not in repr(document)
    # Everything else is the definitions as they are, and the registry keeps its URL.
    plain = registry.model_dump(mode="json")
    assert {**document, "store": plain["store"]} == plain
    assert registry.store.online == "redis://app:secret@cache:6379/0?password=secret"


def test_the_registry_document_shows_description_tags_and_owner() -> None:
    text = REGISTRY.replace(
        "    entity: user\n",
        "    entity: user\n    description: Counts.\n    owner: risk\n    tags: {team: risk}\n"
    ).replace("n: {agg: count}", "n: {agg: count, tags: {pii: false}, description: All.}")
    view = registry_document(parse_registry(text))["feature_views"]["v"]
    assert (view["description"], view["owner"], view["tags"]) == ("Counts.", "risk",
                                                                  {"team": "risk"})
    assert view["features"]["n"]["tags"] == {"pii": "false"}
    assert view["features"]["n"]["description"] == "All."
