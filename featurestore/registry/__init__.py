"""registry.yaml: loading with positions, typed models, checks, plan and applied state."""

from featurestore.registry.models import (
    Entity,
    Feature,
    FeatureView,
    Registry,
    RequestView,
    Source,
    Store,
)
from featurestore.registry.validation import (
    REGISTRY_FILE_NAME,
    load_registry,
    parse_registry,
    resolve_registry_path,
)

__all__ = [
    "REGISTRY_FILE_NAME",
    "Entity",
    "Feature",
    "FeatureView",
    "Registry",
    "RequestView",
    "Source",
    "Store",
    "load_registry",
    "parse_registry",
    "resolve_registry_path",
]
