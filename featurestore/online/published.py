"""The metadata published with every online version: its one owner.

A published version holds, beside the per-entity states, the metadata that says what
they are and how to read them. This module names every metadata blob, writes them (for
`OnlineStore.write_version`) and checks them on read; nothing else spells the names.

    registry              JSON: the applied registry version the states were built with
                          (version number, text, definitions, source schemas, state keys)
    state:<view>          the view's state key (`featurestore.view_states`)
    end:<view>            the view's materialization end, decimal microseconds
    dictionaries:<view>   JSON: string column → values (a code is an index)
    state_format          how each stored value is laid out (`stored_states`); absent
                          in versions published before newest event times were kept

Publishing the registry with the states is what lets a server switch registry, kernels
and states together: whatever version it reads, it can rebuild the kernels that version
was made for, without reading the offline file (which a running materialization holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from featurestore.errors import NotMaterializedError, RegistryMismatchError
from featurestore.registry import Registry
from transforms.spec import ColumnType

REGISTRY = "registry"
STATE_FORMAT = "state_format"
NEWEST_FORMAT = b"state+newest"
"""`STATE_FORMAT` of versions whose values are a state then its newest event time."""


def state_name(view: str) -> str:
    """Metadata name of a view's state key."""
    return f"state:{view}"


def end_name(view: str) -> str:
    """Metadata name of a view's materialization end (decimal microseconds, UTF-8)."""
    return f"end:{view}"


def dictionary_name(view: str) -> str:
    """Metadata name of a view's string dictionaries (JSON: column → list of values)."""
    return f"dictionaries:{view}"


@dataclass(frozen=True)
class PublishedRegistry:
    """The applied registry version a published online version was built with.

    Attributes:
        version: the applied version number.
        registry_hash: SHA-256 of its text.
        text: the registry file's text (for located compile errors).
        definition: the validated definitions as JSON.
        schemas: source → column → type, as the kernels were compiled against them.
        state_keys: feature view → state key of its published states.
    """

    version: int
    registry_hash: str
    text: str
    definition: str
    schemas: dict[str, dict[str, str]]
    state_keys: dict[str, str]

    def registry(self) -> Registry:
        """The definitions as a Registry."""
        return Registry.model_validate_json(self.definition)

    def column_types(self) -> dict[str, dict[str, ColumnType]]:
        """The source schemas as the compiler takes them."""
        return {source: {column: ColumnType(kind) for column, kind in columns.items()}
                for source, columns in self.schemas.items()}

    def encode(self) -> bytes:
        """The JSON blob stored under `REGISTRY`."""
        return orjson.dumps(self.__dict__)

    @classmethod
    def decode(cls, blob: bytes) -> PublishedRegistry:
        """Read a blob written by `encode`."""
        return cls(**orjson.loads(blob))


@dataclass(frozen=True)
class ViewPublication:
    """What one view contributes to a published version's metadata."""

    view: str
    state_key: str
    end_us: int
    dictionaries: str  # JSON


def publication_metadata(registry: PublishedRegistry,
                         views: Iterable[ViewPublication]) -> dict[str, bytes]:
    """Every metadata blob of a new version, for `OnlineStore.write_version`."""
    metadata = {REGISTRY: registry.encode(), STATE_FORMAT: NEWEST_FORMAT}
    for view in views:
        metadata[state_name(view.view)] = view.state_key.encode()
        metadata[end_name(view.view)] = str(view.end_us).encode()
        metadata[dictionary_name(view.view)] = view.dictionaries.encode()
    return metadata


def check_view(metadata: Mapping[str, bytes | None], view: str, expected_key: str) -> int:
    """Check that the published states of `view` fit kernels with `expected_key`.

    Returns:
        The view's materialization end in microseconds.

    Raises:
        NotMaterializedError: the version holds no states of the view.
        RegistryMismatchError: they were built by other definitions of the view.
    """
    stored, end = metadata.get(state_name(view)), metadata.get(end_name(view))
    if stored is None or end is None:
        raise NotMaterializedError(
            f"feature view '{view}' is not in the online store yet: run "
            "`featurestore materialize`")
    if stored.decode() != expected_key:
        raise RegistryMismatchError(
            f"the online states of feature view '{view}' were built by other definitions "
            f"of it (state {stored.decode()}, these definitions need {expected_key}): run "
            "`featurestore materialize` to rebuild it")
    return int(end)


def published_registry(metadata: Mapping[str, bytes | None]) -> PublishedRegistry | None:
    """The registry version of a read that asked for `REGISTRY` (None if absent)."""
    blob = metadata.get(REGISTRY)
    return PublishedRegistry.decode(blob) if blob else None
