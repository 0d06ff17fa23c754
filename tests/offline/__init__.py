"""Tests of the offline data-access layer (DuckDB sources, events, spines, pushes)."""
