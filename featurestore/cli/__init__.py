"""The `featurestore` command line (also `python -m featurestore`).

Each module below adds its commands to the one group, `main`.
"""

from featurestore.cli import data, definitions, demo, sample, serving
from featurestore.cli.group import main
from featurestore.cli.serving import describe_server

__all__ = ["data", "definitions", "demo", "describe_server", "main", "sample", "serving"]
