"""The `featurestore` command line (also `python -m featurestore`).

Each module below adds its commands to the one group, `main`.
"""

from featurestore.cli import (
    audit,
    browse,
    console,
    data,
    definitions,
    demo,
    drift,
    fits,
    init_project,
    push,
    replay,
    sample,
    serving,
    statistics,
    tokens,
    validation,
)
from featurestore.cli.group import main
from featurestore.cli.serving import describe_server

__all__ = [
    "audit", "browse", "console", "data", "definitions", "demo", "describe_server", "drift", "fits",
    "init_project", "main",
    "push", "replay", "sample", "serving", "statistics", "tokens", "validation",
]
