"""Small demo projects on disk for tests: the repository's registry.yaml plus sample data."""

from __future__ import annotations

from pathlib import Path

from featurestore.sample_data import generate_transactions

REPO = Path(__file__).resolve().parents[1]
DEMO_TEXT = (REPO / "registry.yaml").read_text()


def write_demo_project(directory: Path, text: str = DEMO_TEXT, events: int = 2_000,
                       users: int = 50, days: int = 30, seed: int = 0) -> Path:
    """Write registry.yaml and its sample transactions under `directory`; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "registry.yaml").write_text(text)
    generate_transactions(directory / "data" / "transactions.parquet", events=events,
                          users=users, days=days, seed=seed)
    return directory
