"""The read-only web console: the registry, lineage, freshness, statistics and runs of one
feature store, as pages a browser shows with no internet.

`featurestore ui` serves it on its own; `featurestore serve --ui` mounts it at /ui beside
the online API. Pages are rendered on the server (Jinja2 templates, SVG plots and graph);
every asset comes from this package. Nothing here writes: the offline file is opened
read-only, the online store is only read.
"""

from featurestore.console.app import create_console_app

__all__ = ["create_console_app"]
