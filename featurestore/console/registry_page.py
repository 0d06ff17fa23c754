"""What the Registry page lists: every definition, with the text its search box matches.

Rows are plain values for the template. Each carries `search`: its name, kind, tags
(`name=value` and the bare name), owner and description, lower-cased, which the page's
script matches against what is typed (`assets/console.js`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from featurestore.catalog import Catalog
from featurestore.registry.durations import format_duration
from featurestore.store import FeatureStore


@dataclass(frozen=True)
class FeatureRow:
    """One feature of a feature view or request view."""

    view: str
    name: str
    type: str
    aggregation: str | None
    expression: str
    window: str
    hop: str
    description: str | None
    tags: Mapping[str, str]
    owner: str | None
    search: str


@dataclass(frozen=True)
class Card:
    """One definition: its kind, name, (label, value) fields, features and search text."""

    kind: str
    name: str
    anchor: str
    fields: tuple[tuple[str, str], ...]
    features: tuple[FeatureRow, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()
    search: str = ""


@dataclass(frozen=True)
class Section:
    """A heading and its cards."""

    title: str
    anchor: str
    cards: tuple[Card, ...]


def anchor(kind: str, name: str) -> str:
    """The id of a definition's card on the Registry page (`view-user_txn`)."""
    return f"{kind.replace(' ', '-')}-{name}"


def build_registry_page(store: FeatureStore, catalog: Catalog,
                        schemas: Mapping[str, tuple[tuple[str, str], ...]] | None
                        ) -> tuple[Section, ...]:
    """Sections for entities, sources, feature views, request views, services, fits and
    training sets, in registry order.

    Args:
        store: the store shown.
        catalog: its catalog.
        schemas: source → (column, type) pairs when the sources could be read.
    """
    registry = store.registry
    entities = tuple(_card("entity", name, catalog.describe(name).fields)
                     for name in registry.entities)
    sources = tuple(_card("source", name, catalog.describe(name).fields,
                          columns=(schemas or {}).get(name, ()))
                    for name in registry.sources)
    views = tuple(_view_card(catalog, name) for name in registry.feature_views)
    requests = tuple(_request_card(catalog, name) for name in registry.request_views)
    services = tuple(_card("service", name, catalog.describe(name).fields)
                     for name in registry.services)
    fits = tuple(_card("fit", entry.name, (("about", entry.summary),))
                 for entry in catalog.entries("fits"))
    sets = tuple(_card("training set", entry.name, (("about", entry.summary),))
                 for entry in catalog.entries("training-sets"))
    sections = (Section("Entities", "entities", entities), Section("Sources", "sources", sources),
                Section("Feature views", "feature-views", views),
                Section("Request views", "request-views", requests),
                Section("Services", "services", services), Section("Fits", "fits", fits),
                Section("Training sets", "training-sets", sets))
    return tuple(section for section in sections if section.cards)


def _card(kind: str, name: str, fields: Iterable[tuple[str, str]],
          features: tuple[FeatureRow, ...] = (),
          columns: tuple[tuple[str, str], ...] = ()) -> Card:
    fields = tuple(fields)
    words = [kind, name, *(value for _, value in fields), *(row.search for row in features),
             *(column for column, _ in columns)]
    return Card(kind, name, anchor(kind, name), fields, features, columns,
                search_text(words))


def _view_card(catalog: Catalog, name: str) -> Card:
    view = catalog.registry.feature_views[name]
    rows = tuple(_feature_row(catalog, name, feature) for feature in view.features)
    return _card("view", name, catalog.describe(name).fields, rows)


def _feature_row(catalog: Catalog, view_name: str, name: str) -> FeatureRow:
    registry = catalog.registry
    view = registry.feature_views[view_name]
    spec = view.features[name]
    hop = registry.effective_hop(view_name, name)
    tags = {**view.tags, **spec.tags}
    owner = spec.owner or view.owner
    return FeatureRow(view_name, name, catalog.feature_type(view_name, name), spec.agg,
                      spec.expr if spec.expr is not None else "(counts events)",
                      format_duration(spec.window) if spec.window is not None else "lifetime",
                      format_duration(hop) if hop is not None else "",
                      spec.description, tags, owner,
                      search_text([f"{view_name}:{name}", name, spec.agg, spec.expr or "",
                                   spec.description or "", owner or "", *_tag_words(tags)]))


def _request_card(catalog: Catalog, name: str) -> Card:
    view = catalog.registry.request_views[name]
    rows = tuple(FeatureRow(name, feature, catalog.feature_type(name, feature), None, text,
                            "", "", None, {}, None,
                            search_text([f"{name}:{feature}", feature, text]))
                 for feature, text in view.features.items())
    return _card("request view", name, catalog.describe(name).fields, rows)


def _tag_words(tags: Mapping[str, str]) -> list[str]:
    return [word for key, value in tags.items() for word in (key, f"{key}={value}")]


def search_text(words: Iterable[str]) -> str:
    """Lower-cased words joined by spaces: what the search box matches."""
    return " ".join(str(word).lower() for word in words if word)
