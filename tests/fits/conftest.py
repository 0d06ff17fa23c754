"""Fixtures of the fitted-transform tests: the serving tests' demo projects, on each
online store (a private Redis and the local store)."""

from __future__ import annotations

from tests.serving.conftest import _no_store_overrides, demo_store, shared_store

__all__ = ["_no_store_overrides", "demo_store", "shared_store"]
