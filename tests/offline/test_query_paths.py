"""Relative file names in query sources mean the registry's folder, whatever the working
directory holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.offline.query_paths import anchor_query_paths
from tests.projects import DEMO_TEXT, write_demo_project


def test_only_relative_names_that_exist_under_the_folder_are_anchored(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.parquet").write_bytes(b"")
    (tmp_path / "it's.csv").write_bytes(b"")
    query = ("SELECT * FROM 'data/a.parquet' JOIN read_parquet('data/*.parquet') USING (k) "
             "WHERE name = 'data/b.parquet' AND note = 'x''y' "
             "AND src IN ('s3://bucket/data/a.parquet', '/abs/data/a.parquet', 'it''s.csv')")
    anchored = anchor_query_paths(query, tmp_path)
    assert anchored == query.replace(
        "'data/a.parquet'", f"'{tmp_path}/data/a.parquet'").replace(
        "'data/*.parquet'", f"'{tmp_path}/data/*.parquet'").replace(
        "'it''s.csv'", f"'{tmp_path}/it''s.csv'")
    assert anchor_query_paths("SELECT 'unterminated", tmp_path) == "SELECT 'unterminated"


def test_a_same_named_file_in_the_working_directory_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    text = DEMO_TEXT.replace("    path: data/transactions.parquet",
                             "    query: SELECT * FROM read_parquet('data/transactions.parquet')")
    project = write_demo_project(tmp_path / "project", text, events=300, users=5)
    decoy = write_demo_project(tmp_path / "elsewhere", events=900, users=5)
    monkeypatch.chdir(decoy)
    store = FeatureStore(project)
    statistics = store.stats(source="transactions")
    assert statistics.rows == 300
