"""The ASGI application factory, for servers other than `featurestore serve`::

    FEATURESTORE_REGISTRY=/srv/features/registry.yaml \\
        uvicorn featurestore.serving.app:create_app --factory --workers 4

`featurestore serve --workers N` runs the same factory in each worker process. The
registry comes from FEATURESTORE_REGISTRY (default ./registry.yaml); the stores from
the registry, unless FEATURESTORE_OFFLINE or FEATURESTORE_ONLINE override them.
FEATURESTORE_AUTH=1 requires bearer tokens as `serve --auth` does (`serving.guard`);
FEATURESTORE_LOG_SAMPLE_RATE sets the served-value log's rate as `serve
--log-sample-rate` does (`serving.served_log`); FEATURESTORE_UI=1 mounts the web console
at /ui as `serve --ui` does.
"""

from __future__ import annotations

import os
import sys

from featurestore.context import REGISTRY_ENV, UI_ENV
from featurestore.errors import FeatureStoreError, RegistryError
from featurestore.serving.access_log import AccessLog
from featurestore.serving.guard import auth_from_environment
from featurestore.serving.served_log import sample_rate_from_environment
from featurestore.serving.server import create_app as create_store_app
from featurestore.store import FeatureStore

STARTUP_FAILURE = 3
"""Exit status of a process whose app cannot be built; uvicorn's supervisor uses the same
number to stop, rather than restart forever, workers that fail this way."""


def create_app() -> AccessLog:
    """The server application for the registry named by FEATURESTORE_REGISTRY.

    A registry that is missing or invalid, or stores that cannot be used, end the
    process with one line per problem on stderr and exit status 3: the error is in the
    configuration, and no number of restarts fixes it.
    """
    registry = os.environ.get(REGISTRY_ENV) or "registry.yaml"
    try:
        store = FeatureStore(registry)
        return create_store_app(store, owns_store=True, auth=auth_from_environment(),
                                log_sample_rate=sample_rate_from_environment(),
                                ui=os.environ.get(UI_ENV, "").strip().lower()
                                in ("1", "true", "yes", "on"))
    except RegistryError as error:
        problems = error.problems or [str(error)]
    except FeatureStoreError as error:
        problems = [f"error: {error}"]
    for problem in problems:
        print(f"featurestore: {problem}", file=sys.stderr, flush=True)
    # SystemExit ends the process without a traceback, whoever called the factory.
    raise SystemExit(STARTUP_FAILURE)
