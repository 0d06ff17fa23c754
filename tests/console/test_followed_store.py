"""The console follows edits to registry.yaml, keeps showing the last valid version when
the file breaks, and escapes whatever the file says."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi.testclient import TestClient

from featurestore.console import create_console_app
from tests.serving.conftest import make_demo_store


def _rewrite(registry: Path, text: str) -> None:
    registry.write_text(text)
    # A later modification time even on file systems with coarse timestamps.
    status = registry.stat()
    os.utime(registry, ns=(status.st_atime_ns, status.st_mtime_ns + 2_000_000_000))


def test_edits_show_on_the_next_page_and_a_broken_file_keeps_the_last(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    registry = store.registry_path
    store.close()
    original = registry.read_text()
    with TestClient(create_console_app(registry)) as client:
        assert "has changes that are not applied" not in client.get("/").text

        _rewrite(registry, original.replace("A user's card spending.",
                                            "Spending <script>alert(1)</script> & more"))
        page = client.get("/registry").text
        assert "Spending &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
        assert "<script>alert(1)" not in page
        assert "has changes that are not applied" in client.get("/").text

        _rewrite(registry, original.replace("feature_views:", "feature_views: [", 1))
        overview = client.get("/")
        assert overview.status_code == 200
        assert "registry.yaml does not load, showing its last valid version" in overview.text
        assert client.get("/registry").status_code == 200  # still the edited definitions

        _rewrite(registry, original)
        overview = client.get("/").text
        assert "does not load" not in overview and "not applied" not in overview


def test_a_project_never_applied_or_materialized_still_has_every_page(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    store.offline_path.unlink()  # not even applied
    registry = store.registry_path
    store.close()
    with TestClient(create_console_app(registry)) as client:
        overview = client.get("/").text
        assert "never applied" in overview and "never materialized" in overview
        assert "Nothing materialized yet" in client.get("/runs").text
        feature = client.get("/features/user_txn/amount_sum_7d")
        assert feature.status_code == 200 and "never materialized" in feature.text
        assert client.get("/lineage").status_code == 200
