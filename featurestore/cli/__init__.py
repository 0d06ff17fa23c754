"""The `featurestore` command line (also `python -m featurestore`).

Each module below adds its commands to the one group, `main`.
"""

from featurestore.cli import (
    audit,
    browse,
    data,
    definitions,
    demo,
    fits,
    init_project,
    push,
    sample,
    serving,
    tokens,
)
from featurestore.cli.group import main
from featurestore.cli.serving import describe_server

__all__ = [
    "audit", "browse", "data", "definitions", "demo", "describe_server", "fits", "init_project",
    "main",
    "push", "sample", "serving", "tokens",
]
