"""A feature store with one compiled transform graph for training and serving.

Start with `FeatureStore("registry.yaml")`; every error a user can cause is a
`FeatureStoreError` (see `featurestore.errors`).
"""

from featurestore.errors import (
    FeatureStoreError,
    FeatureStoreWarning,
    InputError,
    NotAppliedError,
    OnlineStoreUnavailable,
    RegistryError,
    SourceError,
    StoreLockedError,
)
from featurestore.store import FeatureStore

__all__ = [
    "FeatureStore",
    "FeatureStoreError",
    "FeatureStoreWarning",
    "InputError",
    "NotAppliedError",
    "OnlineStoreUnavailable",
    "RegistryError",
    "SourceError",
    "StoreLockedError",
]
