"""Domain errors. Every error a user can cause is one of these, with a message that
names the problem and where it is."""

from __future__ import annotations


class FeatureStoreError(Exception):
    """Base class of every error the feature store raises on purpose."""


class RegistryError(FeatureStoreError):
    """registry.yaml is invalid. `problems` holds one located line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NotAppliedError(FeatureStoreError):
    """An operation needs an applied registry and there is none (run `apply`)."""


class SourceError(FeatureStoreError):
    """A source is missing, unreadable, or lacks a column the definitions use."""


class InputError(FeatureStoreError):
    """Bad input to an SDK call (a spine, entities, request fields, pushed rows)."""


class OnlineStoreUnavailable(FeatureStoreError):
    """The online store cannot be reached."""


class StoreLockedError(FeatureStoreError):
    """The offline DuckDB file stayed locked by another process for too long."""


class NotMaterializedError(FeatureStoreError):
    """The online store holds no published state (for a view) yet: run materialize."""

    code = "not_materialized"


class RegistryMismatchError(FeatureStoreError):
    """The online states of a view were built by other definitions than those in use.

    Serving them would apply one definition's kernels to another's layout of state, so
    lookups and pushes refuse until `materialize` has rebuilt the view.
    """

    code = "registry_mismatch"


class FeatureStoreWarning(UserWarning):
    """Something the feature store did on its own that the caller should know about (for
    example, spine rows with a null entity key got the features of an unseen entity)."""


class EngineError(FeatureStoreError):
    """The execution engine (a Dask scheduler) cannot be reached, is not installed, or
    gave up on a partition task; a run that hits it commits nothing."""
